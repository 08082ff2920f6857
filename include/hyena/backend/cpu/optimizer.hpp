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
#include <type_traits>

#include <xsimd/xsimd.hpp>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

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

#if defined(__AVX2__) && defined(__FMA__)
// Float parameters with AVX2 and FMA: adamw_update four elements at a time in __m256d, each
// loaded as four floats and widened (vcvtps2pd), narrowed again to store (vcvtpd2ps); the same
// operations in the same order, so the same bits. xsimd 8 widens and narrows float lanes one at
// a time, which made its loop below slower than cpu_ref's scalar one on a Sapphire Rapids Xeon
// (one thread, the teacher's 858880 parameters: 5.7 ms against 3.0; this loop 1.5 ms; docs/results.md
// section 5, run M). Returns the elements done (all but fewer than four).
inline index_t adamw_floats_avx2(const adamw_hyper& h, const adamw_segment<float>& sg) {
  const __m256d beta1 = _mm256_set1_pd(h.beta1), beta2 = _mm256_set1_pd(h.beta2);
  const __m256d one_minus_beta1 = _mm256_set1_pd(1 - h.beta1), one_minus_beta2 = _mm256_set1_pd(1 - h.beta2);
  const __m256d step = _mm256_set1_pd(sg.lr / h.bias_correction1), bc2 = _mm256_set1_pd(h.bias_correction2_sqrt);
  const __m256d eps = _mm256_set1_pd(h.eps), decay = _mm256_set1_pd(sg.decay);
  const __m128 grad_scale = _mm_set1_ps(float(h.grad_scale));
  index_t i = 0;
  for (; i + 4 <= sg.n; i += 4) {
    const __m256d g = _mm256_cvtps_pd(_mm_mul_ps(_mm_loadu_ps(sg.grad + i), grad_scale));  // the clip in float
    const __m256d m = _mm256_fmadd_pd(beta1, _mm256_cvtps_pd(_mm_loadu_ps(sg.m + i)), _mm256_mul_pd(one_minus_beta1, g));
    const __m256d v = _mm256_fmadd_pd(beta2, _mm256_cvtps_pd(_mm_loadu_ps(sg.v + i)),
                                      _mm256_mul_pd(_mm256_mul_pd(one_minus_beta2, g), g));
    _mm_storeu_ps(sg.m + i, _mm256_cvtpd_ps(m));
    _mm_storeu_ps(sg.v + i, _mm256_cvtpd_ps(v));
    const __m256d update =
        _mm256_div_pd(_mm256_mul_pd(step, m), _mm256_add_pd(_mm256_div_pd(_mm256_sqrt_pd(v), bc2), eps));
    const __m256d p = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(sg.param + i)), decay,
                                      _mm256_sub_pd(_mm256_setzero_pd(), update));
    _mm_storeu_ps(sg.param + i, _mm256_cvtpd_ps(p));
  }
  return i;
}
#endif

// adamw_update over one segment, vec::size elements at a time (float: adamw_floats_avx2's four
// where it is built); the tail one at a time.
template <class T>
void adamw_segment_simd(const adamw_hyper& h, const adamw_segment<T>& sg) {
  constexpr index_t w = static_cast<index_t>(vec::size);
  const T grad_scale = T(h.grad_scale);
  const vec beta1(h.beta1), beta2(h.beta2), one_minus_beta1(1 - h.beta1), one_minus_beta2(1 - h.beta2);
  const vec step(sg.lr / h.bias_correction1), bc2(h.bias_correction2_sqrt), eps(h.eps), decay(sg.decay);
  alignas(64) T scaled[w];
  index_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<T, float>) i = adamw_floats_avx2(h, sg);
#endif
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
