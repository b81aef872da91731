#pragma once
/// \file
/// Which slice an orchestrator run sends next (parent/orchestrator side): the slices of all its
/// worker objects, interleaved round-robin, so that they progress together instead of one
/// worker's slices waiting for all of another's.
/// Side: parent.

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

namespace corun::detail {

class SliceQueue {
 public:
  struct Next {
    std::size_t worker = 0;  ///< index of the worker object
    std::size_t index = 0;   ///< of the slice in that worker's iterator
  };

  /// `counts[w]`: how many slices worker object `w` has.
  explicit SliceQueue(std::vector<std::size_t> counts)
      : counts_(std::move(counts)), next_(counts_.size(), 0) {}

  std::size_t total() const noexcept {
    std::size_t total = 0;
    for (std::size_t count : counts_) total += count;
    return total;
  }

  /// Whether every slice was taken.
  bool empty() const noexcept {
    for (std::size_t w = 0; w < counts_.size(); ++w)
      if (next_[w] < counts_[w]) return false;
    return true;
  }

  /// The next slice of the first worker object, after the one that gave the last, with slices
  /// left; none once every slice was taken.
  std::optional<Next> pop() {
    for (std::size_t k = 0; k < counts_.size(); ++k) {
      const std::size_t w = (round_robin_ + k) % counts_.size();
      if (next_[w] < counts_[w]) {
        round_robin_ = w + 1;
        return Next{w, next_[w]++};
      }
    }
    return std::nullopt;
  }

 private:
  std::vector<std::size_t> counts_;
  std::vector<std::size_t> next_;  ///< per worker object: its first slice not taken yet
  std::size_t round_robin_ = 0;    ///< where the search for the next slice starts
};

}  // namespace corun::detail
