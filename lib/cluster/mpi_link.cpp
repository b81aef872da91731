/// \file
/// The communication thread: MPI_Init_thread, batched non-blocking sends, polled receives with
/// a backoff while idle, MPI_Finalize.
/// Side: every rank.
#include "cluster/mpi_link.hpp"

#include <corun/error.hpp>

#include <algorithm>
#include <exception>
#include <future>
#include <list>
#include <stdexcept>
#include <utility>

namespace corun::detail {

namespace {
constexpr int kBatchTag = 1;
constexpr std::chrono::microseconds kFirstBackoff{10};
}  // namespace

MpiLink::MpiLink(int& argc, char**& argv, std::chrono::microseconds max_poll_interval)
    : max_poll_(std::max(max_poll_interval, kFirstBackoff)) {
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &argc, &argv, &started] {
    int* pargc = &argc;
    char*** pargv = &argv;
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
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    outbox_ = BatchOutbox(static_cast<std::size_t>(size_));
    started.set_value();
    loop();
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
  MPI_Abort(MPI_COMM_WORLD, code);
  std::terminate();  // MPI_Abort does not return
}

void MpiLink::loop() {
  struct Sending {
    MPI_Request request = MPI_REQUEST_NULL;
    std::string bytes;
  };
  std::list<Sending> sending;  // stable addresses: MPI reads the buffers until the send completes
  std::vector<Batch> batches;
  std::vector<std::function<void()>> calls;
  std::shared_ptr<const Inbox> inbox;
  std::chrono::microseconds backoff{0};
  for (;;) {
    bool stopping = false;
    {
      std::lock_guard lock(mutex_);
      calls.swap(calls_);
      if (!outbox_.empty()) batches = outbox_.take();
      inbox = inbox_;
      stopping = stop_;
    }
    bool active = !calls.empty() || !batches.empty();
    for (auto& c : calls) c();
    calls.clear();
    // In the outbox's order: MPI keeps the order of messages between two ranks.
    for (Batch& b : batches) {
      Sending& s = sending.emplace_back();
      s.bytes = std::move(b.bytes);
      MPI_Isend(s.bytes.data(), static_cast<int>(s.bytes.size()), MPI_BYTE, b.peer, kBatchTag,
                p2p_comm_, &s.request);
    }
    batches.clear();
    for (auto it = sending.begin(); it != sending.end();) {
      int done = 0;
      MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
      it = done ? sending.erase(it) : std::next(it);
    }
    if (inbox)
      for (;;) {
        int flag = 0;
        MPI_Status status;
        MPI_Iprobe(MPI_ANY_SOURCE, kBatchTag, p2p_comm_, &flag, &status);
        if (!flag) break;
        int count = 0;
        MPI_Get_count(&status, MPI_BYTE, &count);
        std::string batch(static_cast<std::size_t>(count), '\0');
        MPI_Recv(batch.data(), count, MPI_BYTE, status.MPI_SOURCE, kBatchTag, p2p_comm_,
                 MPI_STATUS_IGNORE);
        (*inbox)(status.MPI_SOURCE, std::move(batch));
        active = true;
      }
    if (stopping && sending.empty()) {
      std::lock_guard lock(mutex_);
      if (outbox_.empty() && calls_.empty()) break;
      continue;
    }
    if (active) {
      backoff = std::chrono::microseconds{0};
      continue;
    }
    // Nothing to do: MPI has no descriptor to wait on, so poll with a growing pause (a blocked
    // MPI_Recv in Open MPI spins a core anyway). Local sends wake the thread at once.
    backoff = backoff.count() == 0 ? kFirstBackoff : std::min(backoff * 2, max_poll_);
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, backoff, [&] { return !outbox_.empty() || !calls_.empty() || stop_; });
  }
}

}  // namespace corun::detail
