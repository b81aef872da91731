// The shared-memory frame ring (issue 21's transport): exact frames in order across the wrap,
// a full ring refusing rather than overwriting, two real processes streaming through it, a
// producer SIGKILLed mid-stream leaving only whole frames, the sleep handshake, and the reader
// fuzzed with random words and bytes: each read either yields a valid frame or throws
// std::invalid_argument naming the ring.
#define CATCH_CONFIG_MAIN
#include "protocol/frame_ring.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace corun::detail;

namespace {

constexpr std::size_t kCapacity = 4096;

/// Memory shared with forked children, zeroed, unmapped at scope exit.
struct SharedMemory {
  explicit SharedMemory(std::size_t n) : size(n) {
    base = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::runtime_error("mmap failed");
  }
  ~SharedMemory() { ::munmap(base, size); }
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  RingWords& words() const { return *static_cast<RingWords*>(base); }
  char* data() const { return static_cast<char*>(base) + sizeof(RingWords); }

  void* base;
  std::size_t size;
};

/// Body `seq` of the stream: its sequence number, then bytes derived from it, of a length that
/// varies so that frames straddle the ring's end at every offset.
std::string stream_body(std::uint64_t seq) {
  std::string body(sizeof seq + seq % 301, '\0');
  std::memcpy(body.data(), &seq, sizeof seq);
  for (std::size_t i = sizeof seq; i < body.size(); ++i)
    body[i] = static_cast<char>((seq * 131 + i) & 0xff);
  return body;
}

/// Waits for a child; its exit status, or 128 + the signal that ended it.
int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("frames come out of the ring exactly and in order, across its wrap", "[ring]") {
  SharedMemory memory(ring_bytes(kCapacity));
  RingWriter writer(memory.base, kCapacity);
  RingReader reader(memory.base, kCapacity, proto::kMaxRequestBody);
  std::string body;
  CHECK_FALSE(reader.try_read(body).has_value());
  CHECK_FALSE(reader.has_frame());
  // 2,000 frames of 8 to 308 bytes through 4 KiB: the ring wraps about a hundred times.
  for (std::uint64_t seq = 0; seq < 2000; ++seq) {
    REQUIRE(writer.try_write(proto::Kind::task, stream_body(seq)));
    CHECK(reader.has_frame());
    const auto h = reader.try_read(body);
    REQUIRE(h.has_value());
    CHECK(h->kind == proto::Kind::task);
    CHECK(h->length == stream_body(seq).size());
    CHECK(body == stream_body(seq));
  }
  CHECK_FALSE(reader.try_read(body).has_value());
  CHECK(memory.words().head.load() == memory.words().tail.load());
}

TEST_CASE("a full ring refuses a frame, writing nothing, until the reader makes room", "[ring]") {
  SharedMemory memory(ring_bytes(kCapacity));
  RingWriter writer(memory.base, kCapacity);
  RingReader reader(memory.base, kCapacity, proto::kMaxRequestBody);
  CHECK(writer.max_frame() == kCapacity);
  // Frames of 1 KiB exactly (a 16-byte header and 1,008 bytes): four fill the ring.
  const std::string kib(1024 - proto::kHeaderSize, 'k');
  for (int i = 0; i < 4; ++i) REQUIRE(writer.try_write(proto::Kind::result, kib));
  const std::uint64_t head = memory.words().head.load();
  CHECK(head == kCapacity);
  CHECK_FALSE(writer.try_write(proto::Kind::result, {}));
  CHECK(memory.words().head.load() == head);
  std::string body;
  REQUIRE(reader.try_read(body).has_value());
  CHECK(body == kib);
  // 1 KiB free now: a frame of 1,025 bytes still does not fit; one of 1,024 does.
  CHECK_FALSE(writer.try_write(proto::Kind::result, kib + "x"));
  CHECK(writer.try_write(proto::Kind::result, kib));
  // Larger than the whole ring: never, even when it is empty.
  for (int i = 0; i < 4; ++i) REQUIRE(reader.try_read(body).has_value());
  CHECK_FALSE(writer.try_write(proto::Kind::result, std::string(kCapacity, 'x')));
  CHECK(writer.try_write(proto::Kind::result, std::string(kCapacity - proto::kHeaderSize, 'x')));
  REQUIRE(reader.try_read(body).has_value());
  CHECK(body == std::string(kCapacity - proto::kHeaderSize, 'x'));
}

TEST_CASE("a capacity that is not a power of two of at least 4 KiB is refused by name",
          "[ring][failure]") {
  SharedMemory memory(ring_bytes(8192));
  CHECK_THROWS_WITH(RingWriter(memory.base, 6000),
                    "corun ring: capacity 6000 must be a power of two of at least 4096 bytes");
  CHECK_THROWS_WITH(RingReader(memory.base, 2048, 100),
                    "corun ring: capacity 2048 must be a power of two of at least 4096 bytes");
}

TEST_CASE("two processes stream 100,000 frames through the ring, every one exact", "[ring]") {
  SharedMemory memory(ring_bytes(kCapacity));
  constexpr std::uint64_t kFrames = 100'000;
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    RingWriter writer(memory.base, kCapacity);
    for (std::uint64_t seq = 0; seq < kFrames; ++seq)
      while (!writer.try_write(proto::Kind::result, stream_body(seq))) ::sched_yield();
    ::_exit(0);
  }
  RingReader reader(memory.base, kCapacity, proto::kMaxRequestBody);
  std::string body;
  std::uint64_t seq = 0, wrong = 0;
  while (seq < kFrames) {
    if (!reader.try_read(body)) {
      ::sched_yield();
      continue;
    }
    if (body != stream_body(seq)) ++wrong;
    ++seq;
  }
  CHECK(wrong == 0);
  CHECK(reap(child) == 0);
  CHECK_FALSE(reader.try_read(body).has_value());
}

TEST_CASE("a producer SIGKILLed mid-stream leaves only whole frames behind", "[ring][failure]") {
  // Killed after it committed a varying number of frames (it stops to be killed with a frame's
  // bytes half copied but not committed, and at random points while streaming).
  for (const std::uint64_t kill_after :
       {std::uint64_t{1}, std::uint64_t{777}, std::uint64_t{5000}}) {
    INFO("killed after frame " << kill_after);
    SharedMemory memory(ring_bytes(kCapacity));
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(ready[0]);
      RingWriter writer(memory.base, kCapacity);
      for (std::uint64_t seq = 0;; ++seq) {
        if (seq == kill_after) {
          // Half a frame's bytes where the next frame goes, then wait to be killed.
          // (only into free room, as a producer writes: never over a frame not yet read).
          const std::uint64_t head = memory.words().head.load();
          const std::size_t room = kCapacity - (head - memory.words().tail.load());
          const std::size_t offset = head & (kCapacity - 1);
          std::memset(memory.data() + offset, 0x5a,
                      std::min({std::size_t{40}, room, kCapacity - offset}));
          const char byte = 'k';
          if (::write(ready[1], &byte, 1) != 1) ::_exit(2);
          ::pause();
        }
        while (!writer.try_write(proto::Kind::result, stream_body(seq))) ::sched_yield();
      }
    }
    ::close(ready[1]);
    RingReader reader(memory.base, kCapacity, proto::kMaxRequestBody);
    std::string body;
    std::uint64_t seq = 0, wrong = 0;
    char byte = 0;
    // Reads while the child streams (it blocks when the ring is full), until it says it stopped.
    for (bool stopped = false; !stopped;) {
      while (reader.try_read(body)) {
        if (body != stream_body(seq)) ++wrong;
        ++seq;
      }
      pollfd p{ready[0], POLLIN, 0};
      stopped = ::poll(&p, 1, 0) == 1;
    }
    REQUIRE(::read(ready[0], &byte, 1) == 1);
    ::kill(child, SIGKILL);
    CHECK(reap(child) == 128 + SIGKILL);
    ::close(ready[0]);
    while (reader.try_read(body)) {
      if (body != stream_body(seq)) ++wrong;
      ++seq;
    }
    CHECK(wrong == 0);
    CHECK(seq == kill_after);  // every committed frame, and not the half-written one
    CHECK_FALSE(reader.try_read(body).has_value());
  }
}

TEST_CASE("the sleep handshake: a consumer that announces sleep is woken exactly once", "[ring]") {
  SharedMemory memory(ring_bytes(kCapacity));
  RingWriter writer(memory.base, kCapacity);
  RingReader reader(memory.base, kCapacity, proto::kMaxRequestBody);
  std::string body;
  // No announcement: frames need no wake-up.
  REQUIRE(writer.try_write(proto::Kind::task, "a"));
  CHECK_FALSE(writer.take_wakeup());
  // A frame waiting: the announcement is withdrawn, the consumer reads instead of sleeping.
  CHECK_FALSE(reader.prepare_to_sleep());
  CHECK(memory.words().consumer_sleeping.load() == 0);
  REQUIRE(reader.try_read(body).has_value());
  // Empty: the consumer may sleep, and the next frame's producer owes one wake-up, not two.
  CHECK(reader.prepare_to_sleep());
  REQUIRE(writer.try_write(proto::Kind::task, "b"));
  CHECK(writer.take_wakeup());
  REQUIRE(writer.try_write(proto::Kind::task, "c"));
  CHECK_FALSE(writer.take_wakeup());
  // A consumer woken by something else withdraws its announcement itself.
  REQUIRE(reader.try_read(body).has_value());
  REQUIRE(reader.try_read(body).has_value());
  CHECK(body == "c");
  CHECK(reader.prepare_to_sleep());
  reader.awake();
  REQUIRE(writer.try_write(proto::Kind::task, "d"));
  CHECK_FALSE(writer.take_wakeup());
}

TEST_CASE("impossible words from the other side are named, not trusted", "[ring][failure]") {
  SharedMemory memory(ring_bytes(kCapacity));
  RingReader reader(memory.base, kCapacity, 1024);
  std::string body;
  memory.words().head.store(kCapacity + 1);
  CHECK_THROWS_WITH(reader.try_read(body),
                    "corun ring: word head: 4097 is impossible against tail 0 in a ring of 4096");
  memory.words().head.store(10);
  CHECK_THROWS_WITH(reader.try_read(body),
                    "corun ring: word head: 10 bytes committed, less than a frame header");
  // A whole header committed, claiming a body that is not.
  {
    memory.words().head.store(0);
    RingWriter writer(memory.base, kCapacity);
    REQUIRE(writer.try_write(proto::Kind::task, std::string(100, 'b')));
    memory.words().head.store(proto::kHeaderSize + 50);
    CHECK_THROWS_WITH(reader.try_read(body),
                      "corun ring: word head: a frame of 116 bytes with only 66 committed");
  }
  // A body past what this side accepts.
  {
    SharedMemory other(ring_bytes(kCapacity));
    RingWriter writer(other.base, kCapacity);
    RingReader strict(other.base, kCapacity, 64);
    REQUIRE(writer.try_write(proto::Kind::task, std::string(65, 'b')));
    CHECK_THROWS_WITH(strict.try_read(body), "corun protocol header: field length: 65 exceeds 64");
  }
  // A consumer's tail the producer cannot believe.
  {
    SharedMemory other(ring_bytes(kCapacity));
    RingWriter writer(other.base, kCapacity);
    other.words().tail.store(5);
    CHECK_THROWS_WITH(writer.try_write(proto::Kind::task, "x"),
                      "corun ring: word tail: 5 is impossible against head 0 in a ring of 4096");
  }
}

TEST_CASE("the reader takes random words and bytes cleanly", "[ring][fuzz]") {
  std::mt19937_64 rng(20261204);
  std::size_t frames = 0, rejected = 0, unclean = 0;
  std::string first_unclean, body;
  for (int round = 0; round < 20'000; ++round) {
    SharedMemory memory(ring_bytes(kCapacity));
    // A valid stream first, then damage: random data bytes, a random head near the tail, or
    // single bytes of a valid header changed.
    {
      RingWriter writer(memory.base, kCapacity);
      const std::uint64_t count = 1 + rng() % 12;
      for (std::uint64_t seq = 0; seq < count; ++seq)
        if (!writer.try_write(proto::Kind::task, stream_body(seq + rng() % 1000))) break;
    }
    const std::uint64_t head = memory.words().head.load();
    switch (rng() % 3) {
      case 0:
        for (int i = 0; i < 8; ++i) memory.data()[rng() % kCapacity] = static_cast<char>(rng());
        break;
      case 1:
        memory.words().head.store(head + rng() % 64 - 32);
        break;
      default:
        memory.data()[rng() % proto::kHeaderSize] = static_cast<char>(rng());
    }
    RingReader reader(memory.base, kCapacity, proto::kMaxRequestBody);
    for (int reads = 0; reads < 16; ++reads) {
      try {
        const auto h = reader.try_read(body);
        if (!h) break;
        REQUIRE(body.size() == h->length);
        ++frames;
      } catch (const std::invalid_argument& e) {
        ++rejected;
        if (std::string_view(e.what()).find("corun") == std::string_view::npos && unclean++ == 0)
          first_unclean = e.what();
        break;
      } catch (const std::exception& e) {
        if (unclean++ == 0) first_unclean = e.what();
        break;
      }
    }
  }
  INFO(frames << " frames read, " << rejected << " rejected; first unclean: " << first_unclean);
  CHECK(unclean == 0);
  CHECK(frames > 0);
  CHECK(rejected > 0);
}
