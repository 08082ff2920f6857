// concept.hpp: what a backend must provide, one concept per op group.
//
// A backend is an empty tag type with static ops (templates over the scalar type T), a `context`
// passed to every op, a `memory` saying where its tensors live, and a `name`. The groups below
// list every op that nn/, models/ and train/ call, with the argument types they pass; `Backend<B>`
// is all of them, for float and double. Each concrete backend ends with `static_assert(Backend<X>)`,
// so a backend that lacks an op stops its own header, not a layer three includes away.
//
// This header names no concrete backend: backend.hpp and the layers include it, and the backends
// (cpu_ref/, cpu/, cuda/) include it, not the other way round.
#pragma once
#include <concepts>
#include <cstdint>

#include "../tensor/view.hpp"
#include "optimizer.hpp"
#include "triangle.hpp"

namespace hyena::backend {

// The target value that marks a row as padding in every loss: no loss, no gradient.
inline constexpr std::int32_t ignore_target = -1;

// Where tensors live: allocation, copies inside the memory, and transfers to and from the host
// (what checkpoints, data upload and sampling go through).
template <class M>
concept memory_space = requires(void* p, const void* q, std::size_t bytes) {
  { M::alignment } -> std::convertible_to<std::size_t>;
  { M::allocate(bytes) } -> std::same_as<void*>;
  M::release(p);
  M::copy(p, q, bytes);
  M::zero(p, bytes);
  M::to_host(p, q, bytes);
  M::to_device(p, q, bytes);
};

// What layers keep in a context (state<S>()): a probe type for the requirement.
struct context_state_probe {
  int value = 0;
};

// The context (holding per-context state such as scratch tensors), the memory and the name.
template <class B>
concept backend_basics = requires(typename B::context& c) {
  { c.template state<context_state_probe>() } -> std::same_as<context_state_probe&>;
  typename B::memory;
  { B::name } -> std::convertible_to<const char*>;
  requires memory_space<typename B::memory>;
};

// Matrix products (C = alpha op(A) op(B) + beta C, row-major; batched with strides), and a
// linear layer's forward with its bias (gemm_bias: C = op(A) op(B) + bias on every row).
template <class B, class T>
concept gemm_ops = requires(typename B::context& c, const T* x, T* y, index_t n, T a, triangle tri) {
  B::gemm(c, false, false, n, n, n, a, x, n, x, n, a, y, n);
  B::gemm(c, false, false, n, n, n, a, x, n, x, n, a, y, n, tri);
  B::gemm_bias(c, false, true, n, n, n, x, n, x, n, x, y, n);
  B::gemm_batched(c, false, false, n, n, n, a, x, n, n, x, n, n, a, y, n, n, n);
  B::gemm_batched(c, false, false, n, n, n, a, x, n, n, x, n, n, a, y, n, n, n, tri);
};

// Pointwise maps, bias rows and their column sums, activations, and the sum of squares.
template <class B, class T>
concept elementwise_ops = requires(typename B::context& c, const T* x, T* y, index_t n, T a) {
  B::fill(c, n, a, y);
  B::copy(c, n, x, y);
  B::add(c, n, x, x, y);
  B::axpy(c, n, a, x, y);
  B::scale(c, n, a, y);
  B::axpby(c, n, a, x, a, y);
  B::mul(c, n, x, x, y);
  B::add_bias(c, n, n, x, y);
  B::bias_grad(c, n, n, x, y);
  B::gelu_forward(c, n, x, y);
  B::gelu_backward(c, n, x, x, y);
  B::swiglu_forward(c, n, n, x, y);
  B::swiglu_backward(c, n, n, x, x, y);
  { B::sum_squares(c, n, x) } -> std::convertible_to<double>;
};

// LayerNorm and RMSNorm, forward and backward.
template <class B, class T>
concept norm_ops = requires(typename B::context& c, const T* x, T* y, index_t n, double eps) {
  B::layer_norm_forward(c, n, n, x, x, x, eps, y, y, y);
  B::layer_norm_backward(c, n, n, x, x, x, x, x, y, y, y);
  B::rms_norm_forward(c, n, n, x, x, eps, y, y);
  B::rms_norm_backward(c, n, n, x, x, x, x, y, y);
};

// Token embedding: gather and its scatter-add backward.
template <class B, class T>
concept embedding_ops = requires(typename B::context& c, const T* x, T* y, index_t n, const std::int32_t* ids) {
  B::embedding_forward(c, n, n, n, ids, x, y);
  B::embedding_backward(c, n, n, ids, x, y);
};

// Rotary embedding, the causal softmax, and the fused causal attention (scores, softmax and
// P V in one op keeping the per-row log-sum-exp; backward recomputes the probabilities).
template <class B, class T>
concept attention_ops = requires(typename B::context& c, const T* x, T* y, index_t n, T a, double base) {
  B::rotary_forward(c, n, n, n, n, n, n, base, y);
  B::rotary_backward(c, n, n, n, n, n, n, base, y);
  B::causal_softmax_forward(c, n, n, a, x, y);
  B::causal_softmax_backward(c, n, n, a, x, x, y);
  B::causal_attention_forward(c, n, n, n, n, n, a, x, n, y, n, y);
  B::causal_attention_backward(c, n, n, n, n, n, a, x, n, x, x, n, x, y);
};

// The short depthwise convolution and the long causal convolution (Hyena's filter).
template <class B, class T>
concept conv_ops = requires(typename B::context& c, const T* x, T* y, index_t n) {
  B::short_conv_forward(c, n, n, n, n, x, x, x, y);
  B::short_conv_backward(c, n, n, n, n, x, x, x, y, y, y);
  B::causal_conv_forward(c, n, n, n, x, x, n, y);
  B::causal_conv_backward(c, n, n, n, x, x, n, x, y, y);
};

// The implicit filter's pieces: sine activation, decay window, per-channel scale, strided copy.
template <class B, class T>
concept filter_ops = requires(typename B::context& c, const T* x, T* y, index_t n, double d) {
  B::sin_forward(c, n, n, x, x, y);
  B::sin_backward(c, n, n, x, x, x, y, y);
  B::decay_window_forward(c, n, n, d, d, d, x, y, n);
  B::decay_window_backward(c, n, n, d, d, d, x, n, y);
  B::scale_add(c, n, n, x, x, y);
  B::scale_grad(c, n, n, x, x, y);
  B::copy_strided(c, n, n, x, n, y, n);
};

// Losses: each returns the summed loss on the host and writes per-row losses and gradients.
template <class B, class T>
concept loss_ops = requires(typename B::context& c, const T* x, T* y, index_t n, T a, const std::int32_t* t) {
  { B::count_targets(c, n, n, t) } -> std::convertible_to<index_t>;
  { B::cross_entropy(c, n, n, x, t, y, y, a) } -> std::convertible_to<double>;
  { B::kl_divergence(c, n, n, x, x, a, y, y, a) } -> std::convertible_to<double>;
  { B::reverse_kl_divergence(c, n, n, x, x, a, y, y, a) } -> std::convertible_to<double>;
  { B::topk_kl_divergence(c, n, n, n, x, x, a, y, y, a) } -> std::convertible_to<double>;
  { B::mse(c, n, x, x, y, a) } -> std::convertible_to<double>;
};

// The distiller's attention-to-Hyena ops: materialised attention probabilities, their sums per
// lag (the Toeplitz projection) and the operator-alignment loss with its gradients.
template <class B, class T>
concept alignment_ops = requires(typename B::context& c, const T* x, T* y, index_t n, T a, double* sums) {
  B::causal_attention_probs(c, n, n, n, n, n, a, x, n, x, y);
  B::attention_lag_sums(c, n, n, n, x, sums);
  { B::hyena_attention_alignment(c, n, n, n, n, x, x, x, n, x, x, y, y, y, y, a) } -> std::convertible_to<double>;
};

// One token at a time (generation): rotary at given positions, attention over a KV cache, the
// short and long convolutions' steps, and the modal (recurrent) form of a Hyena filter.
template <class B, class T>
concept decode_ops = requires(typename B::context& c, const T* x, T* y, index_t n, T a, double base,
                              const index_t* pos) {
  B::rotary_at(c, n, n, n, n, n, base, pos, y);
  B::attention_decode(c, n, n, n, n, a, x, n, x, x, n, pos, y, n);
  B::short_conv_step(c, n, n, n, x, x, x, pos, y);
  B::causal_conv_step(c, n, n, x, n, x, n, pos, y);
  B::modal_step(c, n, n, n, x, x, y, x, y);
  B::modal_prefill(c, n, n, n, x, x, n, n, y);
};

// The optimizer: one fused AdamW update over a list of segments (backend/optimizer.hpp).
template <class B, class T>
concept optimizer_ops = requires(typename B::context& c, const adamw_segment<T>* s, index_t n, adamw_hyper h) {
  B::adamw_step(c, s, n, h);
};

// Every group for one scalar type.
template <class B, class T>
concept backend_ops_for = gemm_ops<B, T> && elementwise_ops<B, T> && norm_ops<B, T> && embedding_ops<B, T> &&
                          attention_ops<B, T> && conv_ops<B, T> && filter_ops<B, T> && loss_ops<B, T> &&
                          alignment_ops<B, T> && decode_ops<B, T> && optimizer_ops<B, T>;

template <class B>
concept Backend = backend_basics<B> && backend_ops_for<B, float> && backend_ops_for<B, double>;

}  // namespace hyena::backend
