/// \file
/// What the TaskService seam shares: the cancelled-task error.
#include <corun/detail/task_service.hpp>

#include <asio/error.hpp>

#include <system_error>

namespace corun::detail {

std::exception_ptr aborted_error() {
  return std::make_exception_ptr(
      std::system_error(asio::error::operation_aborted, "corun: operation cancelled"));
}

bool is_aborted(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    return e.code() == asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}

}  // namespace corun::detail
