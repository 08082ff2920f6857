// cpu/alignment.hpp: threaded versions of cpu_ref/alignment.hpp.
//
// The Hyena-vs-attention alignment runs one channel per task (each channel owns its d_h and
// d_bias, so threads never share an output) and one pass per (batch row, channel) over the
// lower triangle, with the filter stored reversed so that the inner loop over s reads every
// array forward and the compiler vectorises it.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "../context.hpp"
#include "../cpu_ref/alignment.hpp"

namespace hyena::backend {

struct alignment_scratch;  // the per-thread buffers' key in the context

template <class Base>
struct cpu_alignment_ops : Base {
  template <class T>
  static void causal_attention_probs(host_context& ctx, index_t batch, index_t seq, index_t heads, index_t kv_heads,
                                     index_t head_dim, T scale, const T* qkv, index_t qkv_row, const T* lse,
                                     T* probs) {
    const index_t D = head_dim, group = heads / kv_heads, tasks = batch * heads * seq;
#pragma omp parallel for schedule(static) num_threads(ctx.threads()) if (ctx.threads() > 1 && tasks > 64)
    for (index_t task = 0; task < tasks; ++task) {
      const index_t t = task % seq, bh = task / seq, h = bh % heads, b = bh / heads;
      const index_t kc = (heads + h / group) * D;
      const T* q = qkv + (b * seq + t) * qkv_row + h * D;
      const double l = double(lse[bh * seq + t]);
      T* p = probs + (bh * seq + t) * seq;
      for (index_t s = 0; s <= t; ++s) {
        const T* k = qkv + (b * seq + s) * qkv_row + kc;
        T d = 0;
        for (index_t i = 0; i < D; ++i) d += q[i] * k[i];
        p[s] = static_cast<T>(std::exp(double(scale) * double(d) - l));
      }
      std::fill(p + t + 1, p + seq, T(0));
    }
  }

  template <class T>
  static double hyena_attention_alignment(host_context& ctx, index_t batch, index_t seq, index_t channels,
                                          index_t head_dim, const T* x0, const T* x1, const T* h, index_t ldh,
                                          const T* bias, const T* probs, T* d_x0, T* d_x1, T* d_h, T* d_bias,
                                          T grad_scale) {
    const index_t C = channels, heads = channels / head_dim, L = seq;
    const int threads = std::max(1, std::min<int>(ctx.threads(), static_cast<int>(C)));
    auto& bufs = ctx.scratch<alignment_scratch, T>(threads, static_cast<std::size_t>(6 * L));
    double total = 0;
#pragma omp parallel for schedule(dynamic) num_threads(threads) reduction(+ : total) if (threads > 1)
    for (index_t c = 0; c < C; ++c) {
      T* buf = bufs[static_cast<std::size_t>(thread_index())].data();
      T *a0 = buf, *a1 = buf + L, *hr = buf + 2 * L, *dhr = buf + 3 * L, *g1 = buf + 4 * L;
      // hr[j] = h'[L - 1 - j]: lag t - s sits at index L - 1 - t + s, increasing with s.
      for (index_t k = 0; k < L; ++k) hr[L - 1 - k] = h[c * ldh + k] + (k == 0 ? bias[c] : T(0));
      std::fill(dhr, dhr + L, T(0));
      const T two_g = T(2) * grad_scale;
      double sum_c = 0;
      for (index_t b = 0; b < batch; ++b) {
        const T* P = probs + (b * heads + c / head_dim) * L * L;
        for (index_t t = 0; t < L; ++t) a0[t] = x0[(b * L + t) * C + c], a1[t] = x1[(b * L + t) * C + c];
        std::fill(g1, g1 + L, T(0));
        for (index_t t = 0; t < L; ++t) {
          const T xt = a0[t];
          const T* hrow = hr + (L - 1 - t);
          T* dhrow = dhr + (L - 1 - t);
          const T* prow = P + t * L;
          T sq = 0, g0 = 0;
#pragma omp simd reduction(+ : sq, g0)
          for (index_t s = 0; s <= t; ++s) {
            const T hx = hrow[s] * a1[s];
            const T r = xt * hx - prow[s];
            sq += r * r;
            const T g = two_g * r;
            g0 += g * hx;
            dhrow[s] += g * xt * a1[s];
            g1[s] += g * xt * hrow[s];
          }
          sum_c += double(sq);
          if (d_x0) d_x0[(b * L + t) * C + c] = g0;
        }
        if (d_x1)
          for (index_t s = 0; s < L; ++s) d_x1[(b * L + s) * C + c] = g1[s];
      }
      if (d_h)
        for (index_t k = 0; k < L; ++k) d_h[c * ldh + k] = dhr[L - 1 - k];
      if (d_bias) d_bias[c] += dhr[L - 1];
      total += sum_c;
    }
    return total;
  }
};

}  // namespace hyena::backend
