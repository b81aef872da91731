/// \file
/// The shared-memory ring's two ends.
/// Side: both.
#include "protocol/frame_ring.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace corun::detail {

namespace {

void check_capacity(std::size_t capacity) {
  if (capacity < 4096 || (capacity & (capacity - 1)) != 0)
    throw std::invalid_argument("corun ring: capacity " + std::to_string(capacity) +
                                " must be a power of two of at least 4096 bytes");
}

RingWords* words_at(void* memory) {
  return static_cast<RingWords*>(memory);
}

char* data_at(void* memory) {
  return static_cast<char*>(memory) + sizeof(RingWords);
}

[[noreturn]] void bad_word(const char* word, const std::string& why) {
  throw std::invalid_argument(std::string("corun ring: word ") + word + ": " + why);
}

}  // namespace

RingWriter::RingWriter(void* memory, std::size_t capacity)
    : words_(words_at(memory)), data_(data_at(memory)), capacity_(capacity) {
  check_capacity(capacity);
  head_ = words_->head.load(std::memory_order_relaxed);
}

bool RingWriter::try_write(proto::Kind kind, std::string_view body) {
  const proto::Header header{proto::kMagic, proto::kVersion, kind,
                             static_cast<std::uint32_t>(body.size()), 0};
  return commit({reinterpret_cast<const char*>(&header), sizeof header}, body);
}

bool RingWriter::try_write_frame(std::string_view frame) {
  return commit(frame, {});
}

bool RingWriter::commit(std::string_view a, std::string_view b) {
  const std::size_t frame = a.size() + b.size();
  if (frame > capacity_) return false;
  const std::uint64_t tail = words_->tail.load(std::memory_order_acquire);
  if (tail > head_ || head_ - tail > capacity_)
    bad_word("tail", std::to_string(tail) + " is impossible against head " + std::to_string(head_) +
                         " in a ring of " + std::to_string(capacity_));
  if (capacity_ - (head_ - tail) < frame) return false;
  // Wrap-aware: a frame may run past the end of the data into its start.
  std::uint64_t at = head_;
  for (const std::string_view part : {a, b}) {
    if (part.empty()) continue;  // its data() may be null, which memcpy must not get
    const std::size_t offset = static_cast<std::size_t>(at & (capacity_ - 1));
    const std::size_t first = std::min(part.size(), capacity_ - offset);
    std::memcpy(data_ + offset, part.data(), first);
    std::memcpy(data_, part.data() + first, part.size() - first);
    at += part.size();
  }
  head_ = at;
  // Sequentially consistent, against the consumer's announcement that it sleeps: either it sees
  // this frame when it looks again after announcing, or this side sees the announcement.
  words_->head.store(head_, std::memory_order_seq_cst);
  return true;
}

bool RingWriter::take_wakeup() noexcept {
  if (words_->consumer_sleeping.load(std::memory_order_seq_cst) == 0) return false;
  return words_->consumer_sleeping.exchange(0, std::memory_order_seq_cst) != 0;
}

RingReader::RingReader(void* memory, std::size_t capacity, std::uint32_t max_body)
    : words_(words_at(memory)), data_(data_at(memory)), capacity_(capacity), max_body_(max_body) {
  check_capacity(capacity);
  tail_ = words_->tail.load(std::memory_order_relaxed);
}

void RingReader::copy_out(std::uint64_t from, char* to, std::size_t n) const noexcept {
  const std::size_t offset = static_cast<std::size_t>(from & (capacity_ - 1));
  const std::size_t first = std::min(n, capacity_ - offset);
  std::memcpy(to, data_ + offset, first);
  std::memcpy(to + first, data_, n - first);
}

bool RingReader::has_frame() const noexcept {
  return words_->head.load(std::memory_order_acquire) != tail_;
}

std::optional<proto::Header> RingReader::try_read(std::string& body) {
  const std::uint64_t head = words_->head.load(std::memory_order_acquire);
  if (head == tail_) return std::nullopt;
  if (head < tail_ || head - tail_ > capacity_)
    bad_word("head", std::to_string(head) + " is impossible against tail " + std::to_string(tail_) +
                         " in a ring of " + std::to_string(capacity_));
  const std::uint64_t committed = head - tail_;
  // The producer commits whole frames only: anything less than a frame is a broken producer.
  if (committed < proto::kHeaderSize)
    bad_word("head", std::to_string(committed) + " bytes committed, less than a frame header");
  // Copied out before it is validated, so that what was checked is what is used, whatever the
  // other process writes meanwhile.
  char header_bytes[proto::kHeaderSize];
  copy_out(tail_, header_bytes, sizeof header_bytes);
  const std::uint32_t limit = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(max_body_, capacity_ - proto::kHeaderSize));
  const proto::Header h = proto::parse_header({header_bytes, sizeof header_bytes}, limit);
  const std::uint64_t frame = proto::kHeaderSize + std::uint64_t{h.length};
  if (frame > committed)
    bad_word("head", "a frame of " + std::to_string(frame) + " bytes with only " +
                         std::to_string(committed) + " committed");
  body.resize(h.length);
  copy_out(tail_ + proto::kHeaderSize, body.data(), h.length);
  tail_ += frame;
  words_->tail.store(tail_, std::memory_order_release);
  return h;
}

bool RingReader::prepare_to_sleep() noexcept {
  words_->consumer_sleeping.store(1, std::memory_order_seq_cst);
  if (words_->head.load(std::memory_order_seq_cst) == tail_) return true;
  awake();
  return false;
}

void RingReader::awake() noexcept {
  words_->consumer_sleeping.store(0, std::memory_order_seq_cst);
}

}  // namespace corun::detail
