/// \file
/// corun::version(): the version this libcorun was built as (include/corun/version.hpp.in).
/// Side: both.
#include <corun/version.hpp>

namespace corun {

const char* version() noexcept {
  return CORUN_VERSION;
}

}  // namespace corun
