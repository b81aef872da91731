#pragma once
/// \file
/// MpiLink: the one thread of a process that calls MPI. It initialises and finalises MPI,
/// sends what other threads queue (batched per peer into one message), and hands every
/// received batch to an inbox callback. Other threads never wait for MPI, except for the
/// collectives of the setup phase (call()).
/// Side: every rank.

#include "cluster/frame_batches.hpp"

#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace corun::detail {

class MpiLink {
 public:
  /// Receives one batch from `peer`, on the link's thread.
  using Inbox = std::function<void(int peer, std::string batch)>;

  /// Starts the thread, which initialises MPI; returns when it has (throws if it failed).
  MpiLink(int& argc, char**& argv, std::chrono::microseconds max_poll_interval);
  /// stop().
  ~MpiLink();
  MpiLink(const MpiLink&) = delete;
  MpiLink& operator=(const MpiLink&) = delete;

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  /// Which thread level MPI provided.
  int thread_level() const noexcept { return provided_; }

  /// Any thread but the link's: delivers received batches to `inbox` from now on (before the
  /// first call, messages wait in MPI). When it returns, the previous inbox is no longer called.
  void set_inbox(Inbox inbox);
  /// Any thread: queues a frame for `peer`; never blocks on MPI. Throws std::length_error for a
  /// frame over kMaxFrameBytes.
  void send(int peer, FrameKind kind, std::string_view bytes);
  /// Any thread but the link's: runs `f` on the link's thread (for collectives) and waits for
  /// it; rethrows what it threw.
  void call(const std::function<void()>& f);
  /// Any thread but the link's: sends what is queued, finalises MPI and joins the thread;
  /// once (later calls return at once). Nothing is sent or received afterwards.
  void stop();
  /// Aborts the whole job (MPI_Abort), from any thread.
  [[noreturn]] void abort(int code) noexcept;

  /// On the link's thread (inside call()): the communicator for collectives.
  MPI_Comm collective_comm() const noexcept { return coll_comm_; }

 private:
  void run(int* argc, char*** argv);
  void loop();

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  BatchOutbox outbox_{0};
  std::vector<std::function<void()>> calls_;
  std::shared_ptr<const Inbox> inbox_;
  bool stop_ = false;
  std::chrono::microseconds max_poll_;
  int rank_ = 0, size_ = 1, provided_ = 0;
  // Tasks and collectives on separate communicators, so neither can match the other's messages.
  MPI_Comm p2p_comm_ = MPI_COMM_NULL;
  MPI_Comm coll_comm_ = MPI_COMM_NULL;
};

}  // namespace corun::detail
