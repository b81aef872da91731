#pragma once
/// \file
/// In-order delivery for the front-ends (parent/orchestrator side): an ordered orchestrator run
/// and an ordered async_map both get results back in whatever order workers finish them, and
/// hold back those that finished early until everything before them was delivered or failed.
/// Side: parent.

#include <cstddef>
#include <map>
#include <optional>
#include <utility>

namespace corun::detail {

/// Values that each cover `count` consecutive positions (a slice index, a chunk's inputs),
/// released by ascending position from 0 with no position left out.
template <class T>
class InOrder {
 public:
  /// What is held: values and skipped ranges both, since each is one result the caller's
  /// window still counts until the order passes it.
  std::size_t held() const noexcept { return entries_.size(); }

  /// Keeps `value`, for positions [first, first + count), until release() reaches it.
  void hold(std::size_t first, std::size_t count, T value) {
    entries_.emplace(first, Entry{count, std::move(value)});
  }
  /// Positions [first, first + count) failed: they have nothing to deliver, and the order
  /// must not wait for them.
  void skip(std::size_t first, std::size_t count) {
    entries_.emplace(first, Entry{count, std::nullopt});
  }

  /// Calls `deliver(first, count, T&&)` for each value whose turn has come, in order. It may
  /// call clear() or hold more: each value leaves the order before it is handed over.
  template <class Deliver>
  void release(Deliver&& deliver) {
    for (auto it = entries_.find(next_); it != entries_.end(); it = entries_.find(next_)) {
      Entry due = std::move(it->second);
      entries_.erase(it);
      const std::size_t first = next_;
      next_ += due.count;
      if (due.value) deliver(first, due.count, std::move(*due.value));
    }
  }

  /// Drops what is held: a run that stops delivers nothing more.
  void clear() noexcept { entries_.clear(); }

 private:
  struct Entry {
    std::size_t count = 0;
    std::optional<T> value;  ///< none: skipped
  };

  std::size_t next_ = 0;  ///< the first position not released yet
  std::map<std::size_t, Entry> entries_;
};

}  // namespace corun::detail
