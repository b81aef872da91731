#pragma once
/// \file
/// SpecBook: which specs one worker holds, as the parent decides it. A spec is sent once,
/// before the first task of it that goes to the worker; the worker is told to forget specs the
/// parent dropped, and, beyond its capacity, the one used least recently (sent again if a task
/// of it comes later). Plain data: no I/O.
/// Side: parent.

#include <corun/detail/task_service.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace corun::detail {

class SpecBook {
 public:
  explicit SpecBook(std::size_t capacity);

  /// What to send before a task of `spec`: these forgets, then the spec itself if `send`.
  struct Plan {
    std::vector<std::uint64_t> forget;
    bool send = false;
  };
  /// Notes that a task of `spec` goes to the worker now.
  Plan use(const std::shared_ptr<const TaskSpec>& spec);
  std::size_t held() const noexcept { return held_.size(); }

 private:
  struct Held {
    std::weak_ptr<const TaskSpec> spec;
    const TaskSpec* raw = nullptr;  // which spec the worker holds under the id
    std::uint64_t last_use = 0;
  };
  std::size_t capacity_;
  std::uint64_t clock_ = 0;
  std::unordered_map<std::uint64_t, Held> held_;
};

}  // namespace corun::detail
