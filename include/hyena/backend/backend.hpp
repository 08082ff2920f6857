// backend.hpp: what a backend is.
//
// A backend is an empty tag type with static ops, a `context` type passed to every
// op explicitly, and a `memory` type saying where its tensors live. Layers are
// templates over the backend, so a missing op is a compile error where it is used.
#pragma once
#include <concepts>

#include "../tensor/view.hpp"
#include "cpu/cpu.hpp"
#include "cpu_ref/cpu_ref.hpp"

namespace hyena::backend {

template <class B>
concept Backend = requires(typename B::context& ctx, const float* x, float* y, index_t n) {
  typename B::context;
  typename B::memory;
  { B::name } -> std::convertible_to<const char*>;
  B::gemm(ctx, false, false, n, n, n, 1.0f, x, n, x, n, 0.0f, y, n);
  B::gemm_batched(ctx, false, false, n, n, n, 1.0f, x, n, n, x, n, n, 0.0f, y, n, n, n);
  B::axpy(ctx, n, 1.0f, x, y);
  B::add_bias(ctx, n, n, x, y);
  B::bias_grad(ctx, n, n, x, y);
};

static_assert(Backend<cpu_ref>);
static_assert(Backend<cpu>);

}  // namespace hyena::backend

namespace hyena {
// A view in backend B's memory.
template <class B, class T>
using view_of = view<T, typename B::memory>;
}  // namespace hyena
