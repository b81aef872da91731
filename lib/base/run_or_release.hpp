#pragma once
/// \file
/// RunOrRelease: a handler for an object's own executor that calls one member when it runs and
/// another when it is destroyed without having run.
/// Side: both.

#include <memory>
#include <utility>

namespace corun::detail {

/// Posted work that must not be lost with the loop. A pool's (or a cluster's) end is posted to
/// its strand; when the executor never runs it again (the loop was stopped and its io_context
/// is destroyed, which destroys every pending handler unrun), `release` drops what `run` would
/// have completed. The completions a pool holds own the front-ends' states, which own the pool:
/// only this breaks that cycle, so the users' handlers (and what they own: a SharedArray, a
/// coroutine frame) are destroyed, as Asio destroys its own pending handlers.
template <class T>
class RunOrRelease {
 public:
  using Member = void (T::*)();
  RunOrRelease(std::shared_ptr<T> target, Member run, Member release)
      : target_(std::move(target)), run_(run), release_(release) {}
  RunOrRelease(RunOrRelease&&) noexcept = default;
  RunOrRelease& operator=(RunOrRelease&&) = delete;
  ~RunOrRelease() {
    if (target_) (target_.get()->*release_)();
  }

  void operator()() {
    const std::shared_ptr<T> target = std::move(target_);
    (target.get()->*run_)();
  }

 private:
  std::shared_ptr<T> target_;  // null once run, or moved from
  Member run_;
  Member release_;
};

}  // namespace corun::detail
