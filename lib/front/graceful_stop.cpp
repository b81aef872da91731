/// \file
/// GracefulStop: signals to cancellation and a graceful pool shutdown.
/// Side: parent.
#include <corun/graceful_stop.hpp>
#include <corun/shared_array.hpp>

#include <pthread.h>
#include <signal.h>
#include <atomic>
#include <exception>
#include <list>
#include <vector>

namespace corun {

namespace {
/// Set once a stop was requested in this process: from then on the program is ending, and a
/// further signal has nothing left to hurry.
std::atomic<bool> stopping{false};

/// What a signal GracefulStop handled does once it has handed the signal back: during a stop,
/// nothing; otherwise the default action, but not before the segments this process owns are
/// removed (after ~GracefulStop, a typical main still holds its SharedArrays for a moment).
extern "C" void last_resort_handler(int sig) {
  if (stopping.load(std::memory_order_relaxed)) return;
  detail::remove_owned_segments();
  ::signal(sig, SIG_DFL);
  ::raise(sig);  // delivered, with its default action, when this handler returns
}

void forget_stop_in_child() noexcept {
  stopping.store(false, std::memory_order_relaxed);  // a child of fork() was not asked to stop
}
}  // namespace

struct GracefulStop::State : std::enable_shared_from_this<State> {
  State(ProcessPool& p, std::initializer_list<int> signal_numbers)
      : pool(p), signals(p.get_executor()), numbers(signal_numbers) {
    static const bool installed = ::pthread_atfork(nullptr, nullptr, forget_stop_in_child) == 0;
    (void)installed;
    for (int s : numbers) {
      struct sigaction old {};
      ::sigaction(s, nullptr, &old);
      previous.push_back(old);
      signals.add(s);
    }
  }

  // The last pending handler may go without being called (its pool or io_context destroyed
  // first): the signals are handed over then, before asio's destructor resets them bare.
  ~State() { hand_over(); }

  void wait() {
    signals.async_wait([self = shared_from_this()](const asio::error_code& ec, int sig) {
      if (ec) return;  // removed
      self->on_signal(sig);
    });
  }

  void on_signal(int sig) {
    if (handed_over) {
      ::raise(sig);  // came just before the hand-over: the signal's action now
      return;
    }
    if (requested) {
      pool.terminate();
      wait();  // until the shutdown completes, every further signal hurries it
      return;
    }
    requested = true;
    stopping = true;
    for (auto& e : emitters) e.emit(asio::cancellation_type::total);
    pool.async_shutdown([self = shared_from_this()](std::exception_ptr) {
      self->shutdown_done = true;
      self->hand_over();
    });
    wait();
  }

  /// Gives the signals back, with no moment at which a signal would take its default action
  /// unseen: blocked in this thread while asio's handler makes way for the last resort.
  void hand_over() {
    if (handed_over) return;
    handed_over = true;
    sigset_t set, old_mask;
    ::sigemptyset(&set);
    for (int s : numbers) ::sigaddset(&set, s);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_mask);
    asio::error_code ignored;
    signals.cancel(ignored);
    signals.clear(ignored);
    for (std::size_t i = 0; i < numbers.size(); ++i) {
      struct sigaction now {};
      ::sigaction(numbers[i], nullptr, &now);
      if ((now.sa_flags & SA_SIGINFO) != 0 || now.sa_handler != SIG_DFL)
        continue;  // another signal_set of the program still handles it
      if ((previous[i].sa_flags & SA_SIGINFO) == 0 && previous[i].sa_handler == SIG_DFL) {
        struct sigaction last {};
        last.sa_handler = last_resort_handler;
        ::sigemptyset(&last.sa_mask);
        last.sa_flags = SA_RESTART;
        ::sigaction(numbers[i], &last, nullptr);
      } else {
        ::sigaction(numbers[i], &previous[i], nullptr);  // what the program had before
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    // The emitters stay: a bound operation still pending holds a slot into one of them.
  }

  /// cancel() and the destructor: while a shutdown is under way, its completion hands over.
  void release() {
    if (!requested || shutdown_done) hand_over();
  }

  ProcessPool& pool;
  asio::signal_set signals;
  std::vector<int> numbers;
  std::vector<struct sigaction> previous;         // each signal's disposition before this object
  std::list<asio::cancellation_signal> emitters;  // a list: slots point into its elements
  bool requested = false;
  bool shutdown_done = false;
  bool handed_over = false;
};

GracefulStop::GracefulStop(ProcessPool& pool, std::initializer_list<int> signals)
    : state_(std::make_shared<State>(pool, signals)) {
  state_->wait();
}

GracefulStop::~GracefulStop() {
  state_->release();
}

bool GracefulStop::requested() const noexcept {
  return state_->requested;
}

void GracefulStop::cancel() {
  state_->release();
}

asio::cancellation_slot GracefulStop::new_slot() {
  // Never a reused signal: a token bound but not yet started has no handler in its slot, and
  // the next operation would take the slot over.
  return state_->emitters.emplace_back().slot();
}

}  // namespace corun
