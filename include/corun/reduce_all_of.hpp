#pragma once
/// \file
/// reduce::all_of: several reductions for async_map_reduce in one pass over the results, its
/// value a std::tuple of theirs. Included by <corun/reduce.hpp>.
/// Side: both.

#include <corun/detail/config.hpp>

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace corun::detail {
/// One reduction of an all_of, at position I (so that equal types stay distinct bases).
template <std::size_t I, class Op>
struct reduction_slot {
  Op op;
};
template <class Indices, class... Ops>
struct reduction_slots;
template <std::size_t... I, class... Ops>
struct reduction_slots<std::index_sequence<I...>, Ops...> : reduction_slot<I, Ops>... {};

template <class Op, class A>
A merge_one(const Op& op, A a, A b) {
  if constexpr (requires { op.merge(std::move(a), std::move(b)); })
    return op.merge(std::move(a), std::move(b));
  else
    return op(std::move(a), std::move(b));
}
template <class Op, class A>
A identity_one(const Op& op, const A& init) {
  if constexpr (requires { op.identity(init); })
    return op.identity(init);
  else
    return init;
}
}  // namespace corun::detail

namespace corun::reduce {

/// Several reductions in one pass over the results (workercontext's ReductionComposition): each
/// result is folded by every one of them, and the value is a std::tuple of their values, in
/// order. Pass as init the tuple of their inits:
/// \code
/// using Stats = std::tuple<double, double, double, std::vector<std::uint64_t>>;
/// Stats stats = co_await corun::async_map_reduce<&f>(
///     pool, inputs, Stats{0.0, std::numeric_limits<double>::max(),
///                         std::numeric_limits<double>::lowest(), {}},
///     corun::reduce::all_of(corun::reduce::sum{}, corun::reduce::min{}, corun::reduce::max{},
///                           corun::reduce::histogram{0.0, 1.0, 10}),
///     corun::MapOptions<>{}, asio::use_awaitable);
/// \endcode
/// Each reduction starts its chunks from its own identity (or from its init, if it has none:
/// then it must fold from its init as a chunk's start). all_of stays trivially copyable when
/// its reductions are, as the ready-made ones are.
template <class... Ops>
struct all_of : detail::reduction_slots<std::index_sequence_for<Ops...>, Ops...> {
  static_assert(sizeof...(Ops) > 0, "corun::reduce::all_of needs at least one reduction");
  static_assert((std::is_trivially_copyable_v<Ops> && ...),
                "corun::reduce::all_of: every reduction must be trivially copyable (it travels to "
                "the workers as its bytes)");

  all_of() = default;
  /// The reductions, in the order of the tuple's values.
  explicit all_of(Ops... ops)
      : detail::reduction_slots<std::index_sequence_for<Ops...>, Ops...>{{std::move(ops)}...} {}

  /// Reduction I.
  template <std::size_t I>
  const auto& get() const noexcept {
    return static_cast<
               const detail::reduction_slot<I, std::tuple_element_t<I, std::tuple<Ops...>>>&>(*this)
        .op;
  }

  /// Where a chunk's fold starts: each reduction's identity of its init.
  template <class... A>
  std::tuple<A...> identity(const std::tuple<A...>& init) const {
    check_arity<A...>();
    return identity_each(init, std::index_sequence_for<Ops...>{});
  }
  /// Folds `value` into every reduction's value.
  template <class... A, class R>
  std::tuple<A...> operator()(std::tuple<A...> acc, const R& value) const {
    check_arity<A...>();
    return apply_each(std::move(acc), value, std::index_sequence_for<Ops...>{});
  }
  /// Joins two partials, each reduction with its own merge.
  template <class... A>
  std::tuple<A...> merge(std::tuple<A...> a, std::tuple<A...> b) const {
    check_arity<A...>();
    return merge_each(std::move(a), std::move(b), std::index_sequence_for<Ops...>{});
  }

 private:
  template <class... A>
  static constexpr void check_arity() {
    static_assert(sizeof...(A) == sizeof...(Ops),
                  "corun::reduce::all_of: init must be a std::tuple with one value per reduction");
  }
  template <class Tuple, std::size_t... I>
  Tuple identity_each(const Tuple& init, std::index_sequence<I...>) const {
    return Tuple{detail::identity_one(get<I>(), std::get<I>(init))...};
  }
  template <class Tuple, class R, std::size_t... I>
  Tuple apply_each(Tuple acc, const R& value, std::index_sequence<I...>) const {
    ((std::get<I>(acc) = get<I>()(std::move(std::get<I>(acc)), value)), ...);
    return acc;
  }
  template <class Tuple, std::size_t... I>
  Tuple merge_each(Tuple a, Tuple b, std::index_sequence<I...>) const {
    ((std::get<I>(a) =
          detail::merge_one(get<I>(), std::move(std::get<I>(a)), std::move(std::get<I>(b)))),
     ...);
    return a;
  }
};
/// all_of(sum{}, min{}) is an all_of<sum, min>.
template <class... Ops>
all_of(Ops...) -> all_of<Ops...>;

}  // namespace corun::reduce
