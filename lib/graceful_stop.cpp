/// \file
/// GracefulStop: signals to cancellation and a graceful pool shutdown.
#include <corun/graceful_stop.hpp>

#include <exception>
#include <list>

namespace corun {

struct GracefulStop::State : std::enable_shared_from_this<State> {
  State(ProcessPool& p, std::initializer_list<int> signal_numbers)
      : pool(p), signals(p.get_executor()) {
    for (int s : signal_numbers) signals.add(s);
  }

  void wait() {
    signals.async_wait([self = shared_from_this()](const asio::error_code& ec, int) {
      if (ec) return;  // removed
      self->on_signal();
    });
  }

  void on_signal() {
    if (requested) {
      pool.terminate();
      return;
    }
    requested = true;
    for (auto& e : emitters) e.emit(asio::cancellation_type::total);
    // Listening on would keep the executor busy for ever: stop once the pool is down.
    pool.async_shutdown([self = shared_from_this()](std::exception_ptr) { self->remove(); });
    wait();
  }

  void remove() {
    asio::error_code ignored;
    signals.clear(ignored);
    signals.cancel(ignored);
    // The emitters stay: a bound operation still pending holds a slot into one of them.
  }

  ProcessPool& pool;
  asio::signal_set signals;
  std::list<asio::cancellation_signal> emitters;  // a list: slots point into its elements
  bool requested = false;
};

GracefulStop::GracefulStop(ProcessPool& pool, std::initializer_list<int> signals)
    : state_(std::make_shared<State>(pool, signals)) {
  state_->wait();
}

GracefulStop::~GracefulStop() {
  cancel();
}

bool GracefulStop::requested() const noexcept {
  return state_->requested;
}

void GracefulStop::cancel() {
  state_->remove();
}

asio::cancellation_slot GracefulStop::new_slot() {
  // Never a reused signal: a token bound but not yet started has no handler in its slot, and
  // the next operation would take the slot over.
  return state_->emitters.emplace_back().slot();
}

}  // namespace corun
