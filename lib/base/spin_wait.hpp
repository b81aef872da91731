#pragma once
/// \file
/// spin_until: watching shared memory for a bounded time, the way both sides of a frame ring
/// wait before they sleep (PoolOptions::wait).
/// Side: both.

#include <sched.h>
#include <chrono>
#include <cstdint>

namespace corun::detail {

/// One look's pause: tells the core a spin loop runs (x86's PAUSE), which saves power and
/// lets a sibling hyperthread run; nothing where there is no such instruction.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Looks at `ready()` until it is true (true) or `budget` has passed (false). `yield`: give the
/// core away at each look (sched_yield), for when spinners outnumber cores and the process the
/// spinner waits for may need this one.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::nanoseconds budget, bool yield) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (std::uint32_t looks = 0;; ++looks) {
    if (ready()) return true;
    if (yield)
      ::sched_yield();
    else
      cpu_relax();
    // The clock is read every 64 looks: it costs more than a look.
    if ((looks & 63) == 63 && std::chrono::steady_clock::now() >= deadline) return ready();
  }
}

}  // namespace corun::detail
