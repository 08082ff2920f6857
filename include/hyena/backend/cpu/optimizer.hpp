// cpu/optimizer.hpp: the fused AdamW update over the threads, in SIMD.
//
// The segments are dealt to the threads dynamically, so many small tensors (biases, norms,
// filters) spread as well as large ones; callers cut long tensors into segments (adamw cuts at
// 2^14 elements), and a segment is one thread's work. Nothing is allocated.
//
// Each element's arithmetic is cpu_ref's (backend/optimizer.hpp), in double, written here over
// vectors of doubles with the operations in the same order, so the two agree bit for bit
// (tests/backend/test_backend_contract.cpp checks it on 2^17 elements). One element at a time,
// the two double divisions and the square root per element made this loop 2% of a training
// step (a perf profile of bench_train on a Zen 4 EPYC, docs/results.md section 5, run K).
#pragma once
#include <xsimd/xsimd.hpp>

#include "../context.hpp"
#include "../optimizer.hpp"

namespace hyena::backend {

namespace optimizer_detail {

using vec = xsimd::batch<double>;

// adamw_fma (backend/optimizer.hpp) over vectors: a * b + c rounded once where the machine has
// an FMA instruction. xsimd 8 (Debian 12's) has no AVX-512 fma: it falls back to a * b + c,
// which the compiler may contract into fma(a, b, c) or into fma(the other product, ..., a * b),
// so the x86 intrinsics are called here. Without FMA instructions xsimd's a * b + c is what
// adamw_fma computes too.
template <class V>
V fused_multiply_add(V a, V b, V c) {
#if defined(__AVX512F__)
  if constexpr (V::size == 8) return V(_mm512_fmadd_pd(a, b, c));
#endif
#if defined(__FMA__)
  if constexpr (V::size == 4) return V(_mm256_fmadd_pd(a, b, c));
  if constexpr (V::size == 2) return V(_mm_fmadd_pd(a, b, c));
#endif
  return xsimd::fma(a, b, c);  // aarch64: a fused instruction
}

// adamw_update over one segment, vec::size elements at a time; the tail one at a time.
template <class T>
void adamw_segment_simd(const adamw_hyper& h, const adamw_segment<T>& sg) {
  constexpr index_t w = static_cast<index_t>(vec::size);
  const T grad_scale = T(h.grad_scale);
  const vec beta1(h.beta1), beta2(h.beta2), one_minus_beta1(1 - h.beta1), one_minus_beta2(1 - h.beta2);
  const vec step(sg.lr / h.bias_correction1), bc2(h.bias_correction2_sqrt), eps(h.eps), decay(sg.decay);
  alignas(64) T scaled[w];
  index_t i = 0;
  for (; i + w <= sg.n; i += w) {
    // The clip factor in T, as adamw_update applies it (a float product, then widened).
    for (index_t j = 0; j < w; ++j) scaled[j] = sg.grad[i + j] * grad_scale;
    const vec g = vec::load_aligned(scaled);
    const vec m = fused_multiply_add(beta1, vec::load_unaligned(sg.m + i), one_minus_beta1 * g);
    const vec v = fused_multiply_add(beta2, vec::load_unaligned(sg.v + i), one_minus_beta2 * g * g);
    m.store_unaligned(sg.m + i);
    v.store_unaligned(sg.v + i);
    const vec p = fused_multiply_add(vec::load_unaligned(sg.param + i), decay, -(step * m / (xsimd::sqrt(v) / bc2 + eps)));
    p.store_unaligned(sg.param + i);
  }
  for (; i < sg.n; ++i) adamw_update(h, sg.lr, sg.decay, sg.param[i], sg.grad[i], sg.m[i], sg.v[i]);
}

}  // namespace optimizer_detail

template <class Base>
struct cpu_optimizer_ops : Base {
  template <class T>
  static void adamw_step(host_context& ctx, const adamw_segment<T>* segments, index_t count, const adamw_hyper& h) {
    index_t total = 0;
    for (index_t s = 0; s < count; ++s) total += segments[s].n;
    const int threads = total >= (index_t(1) << 16) ? ctx.threads() : 1;
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
    for (index_t s = 0; s < count; ++s) optimizer_detail::adamw_segment_simd(h, segments[s]);
  }
};

}  // namespace hyena::backend
