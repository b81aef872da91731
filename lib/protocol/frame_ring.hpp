#pragma once
/// \file
/// FrameRing: one direction of a shared-memory transport for protocol frames, a
/// single-producer/single-consumer byte ring in memory that two processes map. The producer
/// commits each frame whole (its bytes first, then the head word, in release order), so a
/// producer killed mid-frame leaves nothing that the consumer would read as a frame. The
/// consumer validates every word and header it reads, as it validates the socket's frames: the
/// other process may be broken, and a bad ring is a protocol violation, never a crash.
/// Side: both.

#include "protocol/protocol.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corun::detail {

/// The words at the start of a ring's memory; its data bytes follow, `capacity` of them. Each
/// word sits on a cache line of its own, so that the two sides' stores do not collide.
struct RingWords {
  /// Bytes the producer ever committed (whole frames only).
  alignas(64) std::atomic<std::uint64_t> head{0};
  /// Bytes the consumer ever released.
  alignas(64) std::atomic<std::uint64_t> tail{0};
  /// 1 while the consumer sleeps on its socket rather than watching the ring: the producer
  /// then owes it one wake-up (it clears the word, and rings).
  alignas(64) std::atomic<std::uint32_t> consumer_sleeping{0};
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the ring's words are shared between processes: they must be lock-free");

/// The data bytes of each of a pool's rings (PoolOptions::wait spins): room for about a
/// thousand small tasks or results; a larger frame is announced in the ring and carried by the
/// socket.
inline constexpr std::size_t kPoolRingCapacity = std::size_t{1} << 20;

/// What a ring of `capacity` data bytes takes: its words, then its data.
constexpr std::size_t ring_bytes(std::size_t capacity) noexcept {
  return sizeof(RingWords) + capacity;
}

/// The producer's end. Keeps its own copy of the head; reads the consumer's tail.
class RingWriter {
 public:
  /// `memory`: ring_bytes(capacity) bytes, zeroed before either side starts; `capacity` a power
  /// of two of at least 4 KiB (std::invalid_argument naming it otherwise).
  RingWriter(void* memory, std::size_t capacity);

  /// The largest frame (header and body) the ring can ever carry; a larger one must go another
  /// way (the socket).
  std::size_t max_frame() const noexcept { return capacity_; }
  /// Copies one frame in and commits it, whole; false, with nothing written, while the ring
  /// lacks room for it (or always, past max_frame()). Throws std::invalid_argument when the
  /// consumer's tail word is impossible (ahead of the head, or behind by more than the ring).
  bool try_write(proto::Kind kind, std::string_view body);
  /// The same for a frame this side encoded whole (header and body, as proto::append_header
  /// and the encoders make them).
  bool try_write_frame(std::string_view frame);
  /// After a commit: true once for each time the consumer announced that it sleeps, so the
  /// caller must wake it (one doorbell frame on the socket).
  bool take_wakeup() noexcept;

 private:
  /// Copies `a` then `b` in as one frame and commits it, or writes nothing.
  bool commit(std::string_view a, std::string_view b);

  RingWords* words_;
  char* data_;
  std::size_t capacity_;
  std::uint64_t head_;
};

/// The consumer's end. Keeps its own copy of the tail; reads the producer's head.
class RingReader {
 public:
  /// As RingWriter's; `max_body` the largest body this side accepts (as ParentChannel's).
  RingReader(void* memory, std::size_t capacity, std::uint32_t max_body);

  /// Takes the next whole frame: its header, with its body copied to `body`; nothing while the
  /// ring is empty. Throws std::invalid_argument, naming the bad word or field, when the
  /// producer's words or a frame's header are impossible (the ring is then unusable).
  std::optional<proto::Header> try_read(std::string& body);
  /// True when a frame is committed and not yet taken.
  bool has_frame() const noexcept;
  /// Announces that the consumer is about to sleep on its socket. True when it may: the ring was
  /// still empty after the announcement (so the producer will ring for the next frame). False
  /// when a frame arrived meanwhile: the announcement is withdrawn, and the caller reads it.
  bool prepare_to_sleep() noexcept;
  /// The consumer watches the ring again (woken, or by a frame on its socket).
  void awake() noexcept;

 private:
  void copy_out(std::uint64_t from, char* to, std::size_t n) const noexcept;

  RingWords* words_;
  const char* data_;
  std::size_t capacity_;
  std::uint32_t max_body_;
  std::uint64_t tail_;
};

}  // namespace corun::detail
