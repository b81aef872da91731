#pragma once
/// \file
/// The parent's side of corun/map.hpp: how async_map keeps its inputs, the source the type-erased
/// engine (detail/map_engine.hpp) reads them from, and the sinks it delivers results to (a
/// vector, the user's callback, a reduction).
/// Side: parent.

#include <corun/detail/config.hpp>

#include <corun/codec.hpp>
#include <corun/detail/completion.hpp>
#include <corun/detail/map_engine.hpp>
#include <corun/detail/map_function.hpp>

#include <cstddef>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace corun::detail {

/// The inputs as async_map keeps them: a borrowed lvalue range (which must outlive the
/// operation) or a range it owns (an rvalue, moved in). Plain begin()/end() rather than
/// std::ranges, whose concepts clang 14 cannot evaluate over libstdc++ 12's views.
template <class Range>
class KeptInputs {
 public:
  using Stored = std::conditional_t<std::is_lvalue_reference_v<Range>,
                                    std::remove_reference_t<Range>*, std::remove_cvref_t<Range>>;
  explicit KeptInputs(Range&& range) : stored_(store(std::forward<Range>(range))) {}
  auto& get() {
    if constexpr (std::is_pointer_v<Stored>)
      return *stored_;
    else
      return stored_;
  }

 private:
  static Stored store(Range&& range) {
    if constexpr (std::is_pointer_v<Stored>)
      return &range;
    else
      return std::move(range);
  }
  Stored stored_;
};

template <class R>
concept input_sequence = requires(R& r) {
  std::begin(r) != std::end(r);
  *std::begin(r);
};
template <class R>
concept known_size = requires(const R& r) {
  std::size(r);
};
/// A contiguous run of In (a vector, an array, a span of In).
template <class R, class In>
concept contiguous_of = requires(R& r) {
  std::data(r);
  std::size(r);
}
&&std::is_same_v<std::remove_cvref_t<decltype(*std::data(std::declval<R&>()))>, In>;

/// Feeds a range to the engine; contiguous runs of trivially copyable inputs of the function's
/// input type are copied in one piece.
template <class Range, class In>
class RangeSource final : public MapSource {
 public:
  explicit RangeSource(KeptInputs<Range> inputs)
      : inputs_(std::move(inputs)), it_(std::begin(inputs_.get())) {}

  std::size_t encode_next(std::size_t max_items, std::size_t max_bytes, std::string& out) override {
    auto& range = inputs_.get();
    using R = std::remove_reference_t<decltype(range)>;
    if constexpr (contiguous_of<R, In> && item_format<In>::raw) {
      const auto done = static_cast<std::size_t>(std::distance(std::begin(range), it_));
      const std::size_t left = static_cast<std::size_t>(std::size(range)) - done;
      const std::size_t n =
          std::min({max_items, left, std::max<std::size_t>(1, max_bytes / sizeof(In))});
      out.append(reinterpret_cast<const char*>(std::data(range) + done), n * sizeof(In));
      std::advance(it_, static_cast<std::ptrdiff_t>(n));
      return n;
    } else {
      std::size_t n = 0;
      for (; n < max_items && it_ != std::end(range) && out.size() < max_bytes; ++it_, ++n)
        item_format<In>::put(static_cast<In>(*it_), out);
      return n;
    }
  }

  std::optional<std::size_t> size() const override {
    using R = std::remove_reference_t<decltype(const_cast<KeptInputs<Range>&>(inputs_).get())>;
    if constexpr (known_size<R>)
      return static_cast<std::size_t>(std::size(const_cast<KeptInputs<Range>&>(inputs_).get()));
    else
      return std::nullopt;
  }

 private:
  KeptInputs<Range> inputs_;
  decltype(std::begin(std::declval<KeptInputs<Range>&>().get())) it_;
};

/// The part of every sink that holds the handler.
template <class Handler>
class SinkBase : public MapSink {
 public:
  SinkBase(Handler handler, const asio::any_io_executor& fallback)
      : holder_(std::move(handler), fallback) {}
  void bind_cancellation(std::function<void(CancelMode)> cancel) override {
    holder_.on_cancellation(std::move(cancel));
  }

 protected:
  HandlerHolder<Handler> holder_;
};

/// async_map: results placed by index; completes with the vector.
template <class R, class Handler>
class VectorSink final : public SinkBase<Handler> {
 public:
  VectorSink(Handler handler, const asio::any_io_executor& fallback, std::optional<std::size_t> n)
      : SinkBase<Handler>(std::move(handler), fallback) {
    if (n) results_.resize(*n);
  }
  void deliver(std::size_t first, std::size_t count, std::string_view payload) override {
    if (results_.size() < first + count) results_.resize(first + count);
    std::size_t i = first;
    check_item_count(
        item_format<R>::for_each(payload, [&](R&& value) { results_[i++] = std::move(value); }),
        count);
  }
  void complete(std::exception_ptr error) override {
    this->holder_.invoke(error, std::move(results_));
  }

 private:
  std::vector<R> results_;
};

/// async_imap: each result to the user's callback.
template <class R, class OnResult, class Handler>
class CallbackSink final : public SinkBase<Handler> {
 public:
  CallbackSink(Handler handler, const asio::any_io_executor& fallback, OnResult on_result)
      : SinkBase<Handler>(std::move(handler), fallback), on_result_(std::move(on_result)) {}
  void deliver(std::size_t first, std::size_t count, std::string_view payload) override {
    std::size_t i = first;
    check_item_count(
        item_format<R>::for_each(payload, [&](R&& value) { on_result_(i++, std::move(value)); }),
        count);
  }
  void complete(std::exception_ptr error) override { this->holder_.invoke(error); }

 private:
  OnResult on_result_;
};

/// async_map_reduce: joins the chunks' partial results in input order.
template <class A, class Op, class Handler>
class ReduceSink final : public SinkBase<Handler> {
 public:
  ReduceSink(Handler handler, const asio::any_io_executor& fallback, A init, Op op)
      : SinkBase<Handler>(std::move(handler), fallback),
        acc_(std::move(init)),
        op_(std::move(op)) {}
  void deliver(std::size_t, std::size_t, std::string_view payload) override {
    acc_ = merge_partials<Op, A>(op_, std::move(acc_), codec<A>::decode(payload));
  }
  void complete(std::exception_ptr error) override { this->holder_.invoke(error, std::move(acc_)); }

 private:
  A acc_;
  Op op_;
};

}  // namespace corun::detail
