#pragma once
/// \file
/// GracefulStop: SIGINT and SIGTERM become the cancellation of a program's runs and a graceful
/// shutdown of its pool, in one line:
/// \code
/// corun::GracefulStop stop{pool};
/// co_await orch.async_run(stop.bind(asio::use_awaitable));  // throws operation_aborted on Ctrl-C
/// \endcode
/// and `stop.cancel()` when the work is done.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/pool.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/signal_set.hpp>

#include <csignal>
#include <initializer_list>
#include <memory>
#include <utility>

namespace corun {

/// Turns the first of some signals (SIGINT and SIGTERM by default) into cancellation of every
/// operation bound with bind(), then a graceful pool.async_shutdown(); a signal that comes before
/// the shutdown completed terminates the pool (kills its workers at once).
///
/// The cancellation type is `cancellation_type::total`: the runs stop dispatching, the tasks
/// already at a worker finish (their results discarded; OrchestratorOptions::on_cancel decides
/// otherwise), and the runs complete with operation_aborted. Killing the workers is left to
/// the second signal.
///
/// The wait for a signal is outstanding work on the executor, as any pending operation: call
/// cancel() when the program's work is done (e.g. in co_spawn's completion handler), or
/// `io.run()` does not return. Once the shutdown completed, nothing is pending any more.
///
/// However many signals come, and whenever they come, a program using GracefulStop ends with its
/// segments removed. When the shutdown completes, at cancel() and at destruction, the object
/// hands the signals back (nothing waits on the executor any more), without a moment at which
/// they are bare (they are blocked in the calling thread meanwhile):
/// - once a stop was requested (a signal came), the program is ending: a further signal is
///   ignored, also after this object is gone, while main destroys its pool and its arrays (a
///   typical main declares the array, the pool, then the GracefulStop, and destroys them in
///   reverse). The exit status stays the program's own. A program that goes on for long after
///   its graceful stop is ended with SIGKILL;
/// - otherwise (cancel() or destruction without a signal) a signal takes its default action
///   (exit status 128 + n), but a handler of corun's first removes every segment this process
///   owns (SharedArray owners, async-signal-safe). A signal whose disposition was not the default
///   when this object was made (ignored, or a handler of the program's) gets that disposition
///   back instead; one that another asio::signal_set of the program still handles is left to it.
/// cancel() or destruction while the shutdown is under way hands over when it completes.
///
/// Lifetime: like an asio::cancellation_signal, it must outlive the operations bound to it.
///
/// Threading: the signal handler runs on the pool's executor; call bind(), requested() and
/// cancel() from the thread that runs it (as the operations you bind are started there). In a
/// program with other threads that do not block these signals, a signal during the hand-over
/// may reach one of them and take its default action (corun's own threads block them).
class CORUN_API GracefulStop {
 public:
  /// Installs handlers for `signals` on the pool's executor. Throws std::system_error when a
  /// signal cannot be handled.
  explicit GracefulStop(ProcessPool& pool, std::initializer_list<int> signals = {SIGINT, SIGTERM});
  /// Hands the signals back (as cancel()).
  ~GracefulStop();
  GracefulStop(const GracefulStop&) = delete;
  GracefulStop& operator=(const GracefulStop&) = delete;

  /// `token` bound to a fresh cancellation signal, which the first signal emits. Each call keeps
  /// one small cancellation_signal until this object is destroyed. A signal that came before
  /// an operation started does not cancel it: check requested() before starting another.
  template <class Token>
  auto bind(Token&& token) {
    return asio::bind_cancellation_slot(new_slot(), std::forward<Token>(token));
  }

  /// Whether a signal came.
  bool requested() const noexcept;

  /// Hands the signals back (see the class comment: their default action, after the process's
  /// segments are removed, or their previous disposition), now or, while a shutdown is under
  /// way, when it completes. No bound operation is cancelled by this object any more.
  void cancel();

 private:
  struct State;
  asio::cancellation_slot new_slot();

  // Shared with the pending handlers, which may run after this object is gone.
  std::shared_ptr<State> state_;
};

}  // namespace corun
