/// \file
/// The communication thread: MPI_Init_thread, batched non-blocking sends, polled receives with
/// a backoff while idle, heartbeats and the failure timeout, MPI_Finalize.
/// Side: every rank.
#include "cluster/mpi_link.hpp"

#include <corun/error.hpp>

#include <pthread.h>
#include <signal.h>
#include <algorithm>
#include <exception>
#include <future>
#include <list>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace corun::detail {

namespace {
constexpr int kBatchTag = 1;
constexpr int kHeartbeatTag = 2;  // one byte, never delivered: it only says the sender lives
constexpr int kAbortTag = 3;      // the sender is aborting the job (MpiLink::abort)
constexpr std::chrono::microseconds kFirstBackoff{10};
using Clock = std::chrono::steady_clock;
}  // namespace

struct MpiLink::Peer {
  bool watched = false;
  bool lost = false;
  int sends_in_flight = 0;
  Clock::time_point last_sent{};
  Clock::time_point last_heard{};
};

MpiLink::MpiLink(int& argc, char**& argv, Timing timing) : timing_(timing) {
  timing_.max_poll_interval = std::max(timing_.max_poll_interval, kFirstBackoff);
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &argc, &argv, &started] {
    int* pargc = &argc;
    char*** pargv = &argv;
    // Open MPI's TCP transport writes to the socket of a peer that may have died: the write
    // must fail with EPIPE, not kill this rank with SIGPIPE (the default action, silently).
    // SIGPIPE goes to the thread that wrote, and the threads MPI starts inherit this mask;
    // the application's own threads keep theirs.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    // FUNNELED is enough: this thread is the only one that calls MPI, and it is the thread
    // that initialised it. Debian's Open MPI 4.1 provides up to MULTIPLE, which would only
    // add locking to every call.
    MPI_Init_thread(pargc, pargv, MPI_THREAD_FUNNELED, &provided_);
    if (provided_ < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      started.set_exception(std::make_exception_ptr(Error(
          errc::protocol_error, "corun: MPI provides thread level " + std::to_string(provided_) +
                                    ", below MPI_THREAD_FUNNELED")));
      return;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &p2p_comm_);
    MPI_Comm_dup(MPI_COMM_WORLD, &coll_comm_);
    // A send to a peer that died must not abort this rank (MPI_ERRORS_ARE_FATAL, the default):
    // under `mpirun --enable-recovery` the job goes on, and the failure timeout says who is gone.
    MPI_Comm_set_errhandler(p2p_comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    outbox_ = BatchOutbox(static_cast<std::size_t>(size_));
    started.set_value();
    loop();
    if (skip_finalize_.load()) return;  // MPI ends with the process
    MPI_Comm_free(&p2p_comm_);
    MPI_Comm_free(&coll_comm_);
    MPI_Finalize();
  });
  try {
    ready.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

MpiLink::~MpiLink() {
  stop();
}

void MpiLink::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void MpiLink::set_inbox(Inbox inbox) {
  {
    std::lock_guard lock(mutex_);
    inbox_ = std::make_shared<const Inbox>(std::move(inbox));
  }
  // The thread takes the inbox and the calls of one turn together: once this empty call ran,
  // no turn that took the previous inbox is still going.
  call([] {});
}

void MpiLink::watch(std::vector<int> peers, Lost lost) {
  {
    std::lock_guard lock(mutex_);
    lost_ = std::make_shared<const Lost>(std::move(lost));
    to_watch_.insert(to_watch_.end(), peers.begin(), peers.end());
  }
  wake_.notify_one();
}

void MpiLink::unwatch(int peer) {
  {
    std::lock_guard lock(mutex_);
    to_unwatch_.push_back(peer);
  }
  wake_.notify_one();
}

void MpiLink::forget_peers() {
  {
    std::lock_guard lock(mutex_);
    lost_.reset();
    to_watch_.clear();
    for (int r = 0; r < size_; ++r) to_unwatch_.push_back(r);
  }
  call([] {});  // as in set_inbox: the turn that runs it took the dropped callback's place
}

void MpiLink::send(int peer, FrameKind kind, std::string_view bytes) {
  {
    std::lock_guard lock(mutex_);
    outbox_.add(peer, kind, bytes);
  }
  wake_.notify_one();
}

void MpiLink::call(const std::function<void()>& f) {
  std::promise<void> done;
  auto finished = done.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stop_) throw Error(errc::pool_closed, "corun: the cluster's MPI link is stopped");
    calls_.push_back([&f, &done] {
      try {
        f();
        done.set_value();
      } catch (...) {
        done.set_exception(std::current_exception());
      }
    });
  }
  wake_.notify_one();
  finished.get();
}

void MpiLink::abort(int code) noexcept {
  // The word goes from the link's thread, the one that calls MPI; a second at most, in case
  // that thread is stuck (then the other ranks may wait, as they would without the word).
  auto told = std::make_shared<std::promise<void>>();
  auto sent = told->get_future();
  try {
    std::lock_guard lock(mutex_);
    if (!stop_)
      calls_.push_back([this, told] {
        std::vector<MPI_Request> requests;
        static const char word = 0;
        for (int r = 0; r < size_; ++r)
          if (r != rank_)
            MPI_Isend(&word, 1, MPI_BYTE, r, kAbortTag, p2p_comm_, &requests.emplace_back());
        const auto until = Clock::now() + std::chrono::seconds(1);
        int done = 0;
        while (!done && Clock::now() < until)
          if (MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done,
                          MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            break;
        told->set_value();
      });
  } catch (...) {
  }
  wake_.notify_one();
  sent.wait_for(std::chrono::seconds(1));
  MPI_Abort(MPI_COMM_WORLD, code);
  std::terminate();  // MPI_Abort does not return
}

void MpiLink::wait(MPI_Request* requests, int count) {
  for (;;) {
    int done = 0;
    MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE);
    if (done) return;
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kAbortTag, p2p_comm_, &flag, &status);
    if (flag)
      throw Error(errc::protocol_error,
                  "corun: rank " + std::to_string(status.MPI_SOURCE) +
                      " aborted the job (an exception unwound its Cluster) while this rank "
                      "waited for it in a collective");
    std::this_thread::yield();  // as a blocking collective would spin
  }
}

void MpiLink::loop() {
  struct Sending {
    MPI_Request request = MPI_REQUEST_NULL;
    std::string bytes;
    int peer = 0;
  };
  std::list<Sending> sending;  // stable addresses: MPI reads the buffers until the send completes
  std::vector<Batch> batches;
  std::vector<std::function<void()>> calls;
  std::shared_ptr<const Inbox> inbox;
  std::shared_ptr<const Lost> on_lost;
  std::vector<Peer> peers(static_cast<std::size_t>(size_));
  std::vector<int> watch, unwatch, lost_now;
  std::chrono::microseconds backoff{0};
  auto isend = [&](int peer, std::string bytes, int tag) {
    Sending& s = sending.emplace_back();
    s.bytes = std::move(bytes);
    s.peer = peer;
    MPI_Isend(s.bytes.data(), static_cast<int>(s.bytes.size()), MPI_BYTE, peer, tag, p2p_comm_,
              &s.request);
    Peer& to = peers[static_cast<std::size_t>(peer)];
    to.last_sent = Clock::now();
    ++to.sends_in_flight;
  };
  for (;;) {
    bool stopping = false;
    {
      std::lock_guard lock(mutex_);
      calls.swap(calls_);
      if (!outbox_.empty()) batches = outbox_.take();
      inbox = inbox_;
      on_lost = lost_;
      watch.swap(to_watch_);
      unwatch.swap(to_unwatch_);
      stopping = stop_;
    }
    const auto now = Clock::now();
    for (int p : watch) {
      Peer& peer = peers.at(static_cast<std::size_t>(p));
      if (peer.lost) continue;
      peer.watched = true;
      peer.last_heard = now;  // its silence counts from here
    }
    for (int p : unwatch) peers.at(static_cast<std::size_t>(p)).watched = false;
    watch.clear();
    unwatch.clear();
    bool active = !calls.empty() || !batches.empty();
    for (auto& c : calls) c();
    calls.clear();
    // In the outbox's order: MPI keeps the order of messages between two ranks.
    for (Batch& b : batches)
      if (!peers[static_cast<std::size_t>(b.peer)].lost)
        isend(b.peer, std::move(b.bytes), kBatchTag);
    batches.clear();
    for (auto it = sending.begin(); it != sending.end();) {
      int done = 0;
      // An error (a peer that died) ends the send as surely as its completion.
      const bool over = MPI_Test(&it->request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || done;
      if (over) --peers[static_cast<std::size_t>(it->peer)].sends_in_flight;
      it = over ? sending.erase(it) : std::next(it);
    }
    if (inbox)
      for (;;) {
        int flag = 0;
        MPI_Status status;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, p2p_comm_, &flag, &status);
        if (!flag) break;
        int count = 0;
        MPI_Get_count(&status, MPI_BYTE, &count);
        std::string batch(static_cast<std::size_t>(count), '\0');
        MPI_Recv(batch.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, p2p_comm_,
                 MPI_STATUS_IGNORE);
        Peer& from = peers[static_cast<std::size_t>(status.MPI_SOURCE)];
        if (from.lost) continue;  // declared lost: what it still sends is dropped
        from.last_heard = Clock::now();
        if (status.MPI_TAG == kAbortTag && from.watched) {  // it is dying: lost now
          from.lost = true;
          from.watched = false;
          lost_now.push_back(status.MPI_SOURCE);
        }
        if (status.MPI_TAG != kBatchTag) continue;
        (*inbox)(status.MPI_SOURCE, std::move(batch));
        active = true;
      }
    if (!stopping) check_peers(peers, lost_now);
    // Not while a message to the peer is still on its way: one that was sent says as much, and
    // a peer that died would only make MPI try (and report) another connection to it.
    for (auto it = peers.begin(); it != peers.end(); ++it)
      if (it->watched && !it->lost && it->sends_in_flight == 0 && !stopping &&
          Clock::now() - it->last_sent >= timing_.heartbeat_interval)
        isend(static_cast<int>(it - peers.begin()), std::string(1, '\0'), kHeartbeatTag);
    for (int p : lost_now)
      if (on_lost) (*on_lost)(p);
    lost_now.clear();
    // Sends to a lost peer may never complete: they are left to MPI_Finalize.
    const bool sends_done = std::all_of(sending.begin(), sending.end(), [&](const Sending& s) {
      return peers[static_cast<std::size_t>(s.peer)].lost;
    });
    if (stopping && sends_done) {
      std::lock_guard lock(mutex_);
      if (outbox_.empty() && calls_.empty()) break;
      continue;
    }
    if (active) {
      backoff = std::chrono::microseconds{0};
      continue;
    }
    // Nothing to do: MPI has no descriptor to wait on, so poll with a growing pause (a blocked
    // MPI_Recv in Open MPI spins a core anyway). Local sends wake the thread at once. While
    // peers are watched the pause stays well under the heartbeat interval.
    auto longest = timing_.max_poll_interval;
    if (std::any_of(peers.begin(), peers.end(), [](const Peer& p) { return p.watched; }))
      longest = std::clamp<std::chrono::microseconds>(timing_.heartbeat_interval / 4, kFirstBackoff,
                                                      longest);
    backoff = backoff.count() == 0 ? kFirstBackoff : std::min(backoff * 2, longest);
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, backoff, [&] {
      return !outbox_.empty() || !calls_.empty() || stop_ || !to_watch_.empty() ||
             !to_unwatch_.empty();
    });
  }
}

void MpiLink::check_peers(std::vector<Peer>& peers, std::vector<int>& lost) {
  const auto now = Clock::now();
  for (std::size_t r = 0; r < peers.size(); ++r) {
    Peer& peer = peers[r];
    if (!peer.watched || peer.lost || now - peer.last_heard < timing_.failure_timeout) continue;
    peer.lost = true;
    peer.watched = false;
    lost.push_back(static_cast<int>(r));
  }
}

}  // namespace corun::detail
