// cpu/attention.hpp: vectorized, threaded rotary embedding and causal softmax.
//
// Rotary reads a cos/sin table cached in the context (angles computed in double once);
// the softmax sums run in SIMD lanes within short blocks and in double across blocks,
// so float rows thousands long stay accurate.
#pragma once
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "../context.hpp"
#include "../cpu_ref/attention.hpp"
#include "elementwise.hpp"

namespace hyena::backend {

namespace attention_detail {

// cos/sin of every (position, pair) angle, (seq, rot_dims / 2) row-major.
template <class T>
struct rotary_table {
  index_t seq = 0, rot_dims = -1;
  double base = 0;
  std::vector<T> cos, sin;

  void ensure(index_t s, index_t r, double b) {
    if (r == rot_dims && b == base && s <= seq) return;
    index_t half = r / 2;
    cos.assign(static_cast<std::size_t>(s * half), T(0));
    sin.assign(static_cast<std::size_t>(s * half), T(0));
    for (index_t p = 0; p < s; ++p)
      for (index_t i = 0; i < half; ++i) {
        double a = rotary_angle(p, i, r, b);
        cos[p * half + i] = static_cast<T>(std::cos(a));
        sin[p * half + i] = static_cast<T>(std::sin(a));
      }
    seq = s, rot_dims = r, base = b;
  }
};

inline constexpr index_t sum_block = 1024;  // lanes hold at most this many terms each

// sum_j a[j] * b[j] (b == nullptr: sum_j a[j]).
template <class T>
double blocked_dot(const T* a, const T* b, index_t n) {
  using batch = xsimd::batch<T>;
  constexpr index_t w = static_cast<index_t>(batch::size);
  double total = 0;
  for (index_t lo = 0; lo < n; lo += sum_block) {
    index_t hi = std::min(n, lo + sum_block), j = lo;
    batch acc(T(0));
    for (; j + w <= hi; j += w) {
      batch x = batch::load_unaligned(a + j);
      acc += b ? x * batch::load_unaligned(b + j) : x;
    }
    double part = xsimd::hadd(acc);
    for (; j < hi; ++j) part += b ? double(a[j]) * double(b[j]) : double(a[j]);
    total += part;
  }
  return total;
}

}  // namespace attention_detail

template <class Base>
struct cpu_attention_ops : Base {
  template <class T>
  static void rotary_forward(host_context& ctx, index_t batch, index_t seq, index_t heads, index_t head_dim,
                             index_t row_stride, index_t rot_dims, double base, T* x) {
    rotary_run(ctx, batch, seq, heads, head_dim, row_stride, rot_dims, base, T(1), x);
  }
  template <class T>
  static void rotary_backward(host_context& ctx, index_t batch, index_t seq, index_t heads, index_t head_dim,
                              index_t row_stride, index_t rot_dims, double base, T* dx) {
    rotary_run(ctx, batch, seq, heads, head_dim, row_stride, rot_dims, base, T(-1), dx);
  }

  template <class T>
  static void causal_softmax_forward(host_context& ctx, index_t batches, index_t seq, T scale, const T* scores,
                                     T* probs) {
    using batch = xsimd::batch<T>;
    constexpr index_t w = static_cast<index_t>(batch::size);
    const index_t rows_per_thread = std::max<index_t>(1, 8192 / std::max<index_t>(seq, 1));
    parallel_ranges(ctx, batches * seq, rows_per_thread, [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        index_t n = r % seq + 1, j = 0;
        const T* s = scores + r * seq;
        T* p = probs + r * seq;
        batch vmax(scale * s[0]);
        for (; j + w <= n; j += w) vmax = xsimd::max(vmax, batch::load_unaligned(s + j) * scale);
        alignas(64) T lanes[w];
        vmax.store_aligned(lanes);
        T mx = *std::max_element(lanes, lanes + w);
        for (; j < n; ++j) mx = std::max(mx, scale * s[j]);
        for (j = 0; j + w <= n; j += w) xsimd::exp(batch::load_unaligned(s + j) * scale - mx).store_unaligned(p + j);
        for (; j < n; ++j) p[j] = std::exp(scale * s[j] - mx);
        T inv = static_cast<T>(1.0 / attention_detail::blocked_dot<T>(p, nullptr, n));
        for (j = 0; j + w <= n; j += w) (batch::load_unaligned(p + j) * inv).store_unaligned(p + j);
        for (; j < n; ++j) p[j] *= inv;
        std::fill(p + n, p + seq, T(0));
      }
    });
  }

  template <class T>
  static void causal_softmax_backward(host_context& ctx, index_t batches, index_t seq, T scale, const T* probs,
                                      const T* dprobs, T* dscores) {
    using batch = xsimd::batch<T>;
    constexpr index_t w = static_cast<index_t>(batch::size);
    const index_t rows_per_thread = std::max<index_t>(1, 8192 / std::max<index_t>(seq, 1));
    parallel_ranges(ctx, batches * seq, rows_per_thread, [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        index_t n = r % seq + 1, j = 0;
        const T* p = probs + r * seq;
        const T* dp = dprobs + r * seq;
        T* ds = dscores + r * seq;
        T dot = static_cast<T>(attention_detail::blocked_dot(p, dp, n));
        for (; j + w <= n; j += w) {
          batch pv = batch::load_unaligned(p + j), dv = batch::load_unaligned(dp + j);
          (pv * (dv - dot) * scale).store_unaligned(ds + j);
        }
        for (; j < n; ++j) ds[j] = scale * p[j] * (dp[j] - dot);
        std::fill(ds + n, ds + seq, T(0));
      }
    });
  }

 private:
  template <class T>
  static void rotary_run(host_context& ctx, index_t nbatch, index_t seq, index_t heads, index_t head_dim,
                         index_t row_stride, index_t rot_dims, double base, T sign, T* x) {
    HYENA_CHECK(rot_dims >= 0 && rot_dims % 2 == 0 && rot_dims <= head_dim, "rotary: rot_dims ", rot_dims,
                " must be even and at most head_dim ", head_dim);
    HYENA_CHECK(row_stride >= heads * head_dim, "rotary: row_stride ", row_stride, " < heads * head_dim ",
                heads * head_dim);
    index_t half = rot_dims / 2;
    if (half == 0 || nbatch * seq * heads == 0) return;
    auto& table = ctx.state<attention_detail::rotary_table<T>>();
    table.ensure(seq, rot_dims, base);
    const T* cos = table.cos.data();
    const T* sin = table.sin.data();
    using batch = xsimd::batch<T>;
    constexpr index_t w = static_cast<index_t>(batch::size);
    parallel_ranges(ctx, nbatch * seq, std::max<index_t>(1, 4096 / (heads * rot_dims)), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const T* c = cos + (r % seq) * half;
        const T* s = sin + (r % seq) * half;
        for (index_t h = 0; h < heads; ++h) {
          T* v = x + r * row_stride + h * head_dim;
          index_t i = 0;
          for (; i + w <= half; i += w) {
            batch x1 = batch::load_unaligned(v + i), x2 = batch::load_unaligned(v + half + i);
            batch cv = batch::load_unaligned(c + i), sv = batch::load_unaligned(s + i) * sign;
            (x1 * cv - x2 * sv).store_unaligned(v + i);
            (x2 * cv + x1 * sv).store_unaligned(v + half + i);
          }
#if defined(__AVX512F__)
          if constexpr (std::is_same_v<T, float>) {
            if (i < half) {  // the rest (all of it for Pythia's 8 of 32 dimensions): one masked vector
              const __mmask16 m = static_cast<__mmask16>((1u << (half - i)) - 1);
              const __m512 x1 = _mm512_maskz_loadu_ps(m, v + i), x2 = _mm512_maskz_loadu_ps(m, v + half + i);
              const __m512 cv = _mm512_maskz_loadu_ps(m, c + i),
                           sv = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + i), _mm512_set1_ps(sign));
              _mm512_mask_storeu_ps(v + i, m, _mm512_sub_ps(_mm512_mul_ps(x1, cv), _mm512_mul_ps(x2, sv)));
              _mm512_mask_storeu_ps(v + half + i, m, _mm512_add_ps(_mm512_mul_ps(x2, cv), _mm512_mul_ps(x1, sv)));
              i = half;
            }
          }
#endif
          for (; i < half; ++i) {
            T x1 = v[i], x2 = v[i + half], sv = sign * s[i];
            v[i] = x1 * c[i] - x2 * sv;
            v[i + half] = x2 * c[i] + x1 * sv;
          }
        }
      }
    });
  }
};

}  // namespace hyena::backend
