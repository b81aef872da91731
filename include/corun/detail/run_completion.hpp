#pragma once
/// \file
/// How a WorkerOrchestrator run completes its handler (parent/orchestrator side): the run in
/// lib/front is compiled once, so it reaches the caller's completion handler, whatever its
/// type, through this interface.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cancellation.hpp>
#include <corun/detail/completion.hpp>
#include <corun/report.hpp>

#include <asio/any_io_executor.hpp>

#include <exception>
#include <functional>
#include <utility>

namespace corun::detail {

class CORUN_API RunCompletion {
 public:
  virtual ~RunCompletion() = default;
  virtual void bind_cancellation(std::function<void(CancelMode)> cancel) = 0;
  virtual void complete(std::exception_ptr error, RunReport&& report) = 0;
};

template <class Handler>
class HandlerRunCompletion final : public RunCompletion {
 public:
  HandlerRunCompletion(Handler handler, const asio::any_io_executor& fallback)
      : holder_(std::move(handler), fallback) {}
  void bind_cancellation(std::function<void(CancelMode)> cancel) override {
    holder_.on_cancellation(std::move(cancel));
  }
  void complete(std::exception_ptr error, RunReport&& report) override {
    holder_.invoke(error, std::move(report));
  }

 private:
  HandlerHolder<Handler> holder_;
};

}  // namespace corun::detail
