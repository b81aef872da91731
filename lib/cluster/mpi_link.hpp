#pragma once
/// \file
/// MpiLink: the one thread of a process that calls MPI. It initialises and finalises MPI,
/// sends what other threads queue (batched per peer into one message), and hands every
/// received batch to an inbox callback. Other threads never wait for MPI, except for the
/// collectives of the setup phase (call()). Once told to watch peers, it sends them heartbeats
/// when it has sent nothing else for a while and declares a peer lost, once, when nothing came
/// from it for the failure timeout; a lost peer is never sent to again and what it still sends
/// is dropped.
/// Side: every rank.

#include "cluster/frame_batches.hpp"

#include <mpi.h>

#include <atomic>
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
  /// Learns that `peer` is lost, on the link's thread, once per peer.
  using Lost = std::function<void(int peer)>;

  struct Timing {
    std::chrono::microseconds max_poll_interval;
    std::chrono::milliseconds heartbeat_interval;
    std::chrono::milliseconds failure_timeout;
  };

  /// Starts the thread, which initialises MPI; returns when it has (throws if it failed).
  MpiLink(int& argc, char**& argv, Timing timing);
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
  /// Any thread but the link's: from now on `peers` get heartbeats and are declared lost to
  /// `lost` when silent for the failure timeout (their silence counts from this call).
  void watch(std::vector<int> peers, Lost lost);
  /// Any thread: `peer` left in good order (it said bye): no heartbeats to it, and its silence
  /// is no loss.
  void unwatch(int peer);
  /// Any thread but the link's: unwatches every peer and drops the `lost` callback; when it
  /// returns, that callback is no longer called or held.
  void forget_peers();
  /// Any thread: queues a frame for `peer`; never blocks on MPI (dropped when the peer is lost).
  /// Throws std::length_error for a frame over kMaxFrameBytes.
  void send(int peer, FrameKind kind, std::string_view bytes);
  /// Any thread but the link's: runs `f` on the link's thread (for collectives) and waits for
  /// it; rethrows what it threw.
  void call(const std::function<void()>& f);
  /// Any thread but the link's: sends what is queued, finalises MPI and joins the thread;
  /// once (later calls return at once). Nothing is sent or received afterwards.
  void stop();
  /// Any thread: at stop(), leave MPI without MPI_Finalize. Its fence waits for every rank of
  /// the job, and Open MPI 4.1's PMIx server may never release it once a rank died (a hang seen
  /// about one run in four here); `mpirun --enable-recovery` accepts a rank that exits without
  /// it. Every survivor of a loss must do the same, or those that finalise wait for the others.
  void skip_finalize() noexcept { skip_finalize_.store(true); }
  /// Aborts the whole job, from any thread: tells every other rank first (their collectives
  /// then throw, see wait()), then MPI_Abort. Under `mpirun --enable-recovery` MPI_Abort ends
  /// only this rank, so without the word the others would wait in a collective for ever.
  [[noreturn]] void abort(int code) noexcept;

  /// On the link's thread (inside call()): the communicator for collectives.
  MPI_Comm collective_comm() const noexcept { return coll_comm_; }
  /// On the link's thread (inside call()): waits for the non-blocking operations `requests`
  /// (collectives, or sends and receives on collective_comm()). Throws corun::Error naming the
  /// rank when another rank said it aborts meanwhile.
  void wait(MPI_Request* requests, int count);
  void wait(MPI_Request& request) { wait(&request, 1); }

 private:
  struct Peer;
  void loop();
  /// On the link's thread: heartbeats to the watched peers, and the losses it sees.
  void check_peers(std::vector<Peer>& peers, std::vector<int>& lost);

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  BatchOutbox outbox_{0};
  std::vector<std::function<void()>> calls_;
  std::shared_ptr<const Inbox> inbox_;
  std::shared_ptr<const Lost> lost_;
  std::vector<int> to_watch_;    // taken by the link's thread on its next turn
  std::vector<int> to_unwatch_;  // likewise
  bool stop_ = false;
  std::atomic<bool> skip_finalize_{false};
  Timing timing_;
  int rank_ = 0, size_ = 1, provided_ = 0;
  // Tasks and collectives on separate communicators, so neither can match the other's messages.
  MPI_Comm p2p_comm_ = MPI_COMM_NULL;
  MPI_Comm coll_comm_ = MPI_COMM_NULL;
};

}  // namespace corun::detail
