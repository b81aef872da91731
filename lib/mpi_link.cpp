/// \file
/// The communication thread: MPI_Init_thread, batched non-blocking sends, polled receives with
/// a backoff while idle, MPI_Finalize.
#include "mpi_link.hpp"

#include "wire.hpp"

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

void append_frame(std::string& batch, FrameKind kind, std::string_view bytes) {
  ByteWriter w(batch);
  w.put(static_cast<std::uint8_t>(kind));
  w.str(bytes);
}

void for_each_frame(std::string_view batch,
                    const std::function<void(FrameKind, std::string_view)>& f) {
  ByteReader r(batch, "corun cluster batch");
  while (r.remaining() != 0) {
    const auto kind = r.get<std::uint8_t>("kind");
    if (kind < static_cast<std::uint8_t>(FrameKind::spec) ||
        kind > static_cast<std::uint8_t>(FrameKind::bye))
      r.fail("kind", std::to_string(kind));
    f(static_cast<FrameKind>(kind), r.str("frame", std::size_t{1} << 31));
  }
}

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
    outbox_.assign(static_cast<std::size_t>(size_), std::string());
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
  if (bytes.size() > kMaxFrameBytes)
    throw std::length_error("corun: a cluster frame of " + std::to_string(bytes.size()) +
                            " bytes exceeds the " + std::to_string(kMaxFrameBytes) +
                            " bytes one MPI message of the link carries");
  {
    std::lock_guard lock(mutex_);
    std::string& batch = outbox_.at(static_cast<std::size_t>(peer));
    if (!batch.empty() && batch.size() + bytes.size() > kMaxFrameBytes) {
      sealed_.emplace_back(peer, std::move(batch));
      batch.clear();
    }
    append_frame(batch, kind, bytes);
    have_output_ = true;
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
  std::vector<std::string> out(static_cast<std::size_t>(size_));
  std::vector<std::pair<int, std::string>> sealed;
  std::vector<std::function<void()>> calls;
  std::shared_ptr<const Inbox> inbox;
  std::chrono::microseconds backoff{0};
  for (;;) {
    bool stopping = false, queued = false;
    {
      std::lock_guard lock(mutex_);
      calls.swap(calls_);
      if (have_output_) {
        out.swap(outbox_);
        sealed.swap(sealed_);
        have_output_ = false;
        queued = true;
      }
      inbox = inbox_;
      stopping = stop_;
    }
    bool active = !calls.empty() || queued;
    for (auto& c : calls) c();
    calls.clear();
    auto isend = [&](int peer, std::string bytes) {
      Sending& s = sending.emplace_back();
      s.bytes = std::move(bytes);
      MPI_Isend(s.bytes.data(), static_cast<int>(s.bytes.size()), MPI_BYTE, peer, kBatchTag,
                p2p_comm_, &s.request);
    };
    if (queued) {
      // Sealed batches first: MPI keeps the order of messages between two ranks.
      for (auto& [peer, bytes] : sealed) isend(peer, std::move(bytes));
      sealed.clear();
      for (std::size_t peer = 0; peer < out.size(); ++peer) {
        if (out[peer].empty()) continue;
        isend(static_cast<int>(peer), std::move(out[peer]));
        out[peer].clear();
      }
    }
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
      if (!have_output_ && calls_.empty()) break;
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
    wake_.wait_for(lock, backoff, [&] { return have_output_ || !calls_.empty() || stop_; });
  }
}

}  // namespace corun::detail
