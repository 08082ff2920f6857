// cpu/decode.hpp: the incremental-decoding ops of cpu_ref/decode.hpp, vectorised over channels
// (histories are (rows, max_len, channels), so one position's channels are contiguous) and
// threaded over rows and channel blocks. Rotary reads the same cos/sin table as the forward's.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../context.hpp"
#include "../cpu_ref/decode.hpp"
#include "attention.hpp"
#include "elementwise.hpp"

namespace hyena::backend {

struct decode_scratch;  // per-thread score buffers' key in the context

template <class Base>
struct cpu_decode_ops : Base {
  template <class T>
  static void rotary_at(host_context& ctx, index_t rows, index_t heads, index_t head_dim, index_t row_stride,
                        index_t rot_dims, double base, const index_t* pos, T* x) {
    const index_t half = rot_dims / 2;
    if (half == 0 || rows == 0) return;
    index_t longest = 0;
    for (index_t r = 0; r < rows; ++r) longest = std::max(longest, pos[r] + 1);
    auto& table = ctx.state<attention_detail::rotary_table<T>>();
    table.ensure(longest, rot_dims, base);
    for (index_t r = 0; r < rows; ++r) {
      const T* c = table.cos.data() + pos[r] * half;
      const T* s = table.sin.data() + pos[r] * half;
      for (index_t h = 0; h < heads; ++h) {
        T* v = x + r * row_stride + h * head_dim;
        for (index_t i = 0; i < half; ++i) {
          const T x1 = v[i], x2 = v[i + half];
          v[i] = x1 * c[i] - x2 * s[i];
          v[i + half] = x2 * c[i] + x1 * s[i];
        }
      }
    }
  }

  // One (row, head) per task: scores over the row's positions, softmax, weighted values.
  // The cache is read once for the scores and once for the values, each key's dot product in
  // SIMD lanes with four keys in flight (one scalar chain per key is latency-bound: measured,
  // 2x slower than transformers at 16K context before), and the exponentials vectorised.
  template <class T>
  static void attention_decode(host_context& ctx, index_t rows, index_t heads, index_t kv_heads, index_t head_dim,
                               T scale, const T* q, index_t q_row, const T* k_cache, const T* v_cache,
                               index_t max_len, const index_t* pos, T* out, index_t out_row) {
    using batch = xsimd::batch<T>;
    constexpr index_t w = index_t(batch::size);
    const index_t D = head_dim, group = heads / kv_heads, kv = kv_heads * D, tasks = rows * heads;
    const index_t Dv = D - D % w;  // the part of a head in whole SIMD batches
    index_t longest = 0;
    for (index_t r = 0; r < rows; ++r) longest = std::max(longest, pos[r] + 1);
    const int threads = std::max(1, std::min<int>(ctx.threads(), int(tasks)));
    auto& bufs = ctx.scratch<decode_scratch, T>(threads, std::size_t(longest + D));
    const bool parallel = threads > 1 && double(tasks) * double(longest) * double(D) > 2e5;
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (parallel)
    for (index_t task = 0; task < tasks; ++task) {
      const index_t r = task / heads, h = task % heads, g = h / group, n = pos[r] + 1;
      T* p = bufs[std::size_t(thread_index())].data();
      T* acc = p + longest;
      const T* qh = q + r * q_row + h * D;
      const T* kb = k_cache + r * max_len * kv + g * D;
      const T* vb = v_cache + r * max_len * kv + g * D;
      auto dot_tail = [&](const T* k, index_t from) {
        T d = 0;
        for (index_t i = from; i < D; ++i) d += qh[i] * k[i];
        return d;
      };
      index_t t = 0;
      for (; t + 4 <= n; t += 4) {
        const T *k0 = kb + t * kv, *k1 = k0 + kv, *k2 = k1 + kv, *k3 = k2 + kv;
        batch a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
        for (index_t i = 0; i < Dv; i += w) {
          const batch qv = batch::load_unaligned(qh + i);
          a0 = xsimd::fma(qv, batch::load_unaligned(k0 + i), a0);
          a1 = xsimd::fma(qv, batch::load_unaligned(k1 + i), a1);
          a2 = xsimd::fma(qv, batch::load_unaligned(k2 + i), a2);
          a3 = xsimd::fma(qv, batch::load_unaligned(k3 + i), a3);
        }
        p[t] = (xsimd::hadd(a0) + dot_tail(k0, Dv)) * scale;
        p[t + 1] = (xsimd::hadd(a1) + dot_tail(k1, Dv)) * scale;
        p[t + 2] = (xsimd::hadd(a2) + dot_tail(k2, Dv)) * scale;
        p[t + 3] = (xsimd::hadd(a3) + dot_tail(k3, Dv)) * scale;
      }
      for (; t < n; ++t) p[t] = dot_tail(kb + t * kv, 0) * scale;
      T mx = -INFINITY;
      for (t = 0; t < n; ++t) mx = std::max(mx, p[t]);
      batch zv(T(0));
      for (t = 0; t + w <= n; t += w) {
        const batch e = xsimd::exp(batch::load_unaligned(p + t) - batch(mx));
        e.store_unaligned(p + t);
        zv += e;
      }
      double z = double(xsimd::hadd(zv));
      for (; t < n; ++t) z += p[t] = std::exp(p[t] - mx);
      std::fill(acc, acc + D, T(0));
      for (t = 0; t < n; ++t) {
        const T* v = vb + t * kv;
        const batch wt(p[t]);
        index_t i = 0;
        for (; i < Dv; i += w) xsimd::fma(wt, batch::load_unaligned(v + i), batch::load_unaligned(acc + i)).store_unaligned(acc + i);
        for (; i < D; ++i) acc[i] += p[t] * v[i];
      }
      const T inv = T(1.0 / z);
      for (index_t i = 0; i < D; ++i) out[r * out_row + h * D + i] = acc[i] * inv;
    }
  }

  template <class T>
  static void short_conv_step(host_context& ctx, index_t rows, index_t channels, index_t kernel, const T* ring,
                              const T* weight, const T* bias, const index_t* pos, T* y) {
    parallel_ranges(ctx, rows * channels, 1 << 14, [&](index_t lo, index_t hi) {
      for (index_t i = lo; i < hi; ++i) {
        const index_t r = i / channels, c = i % channels;
        T acc = bias[c];
        for (index_t k = 0; k < kernel; ++k) {
          const index_t t = pos[r] - (kernel - 1) + k;
          if (t >= 0) acc += weight[c * kernel + k] * ring[(r * kernel + t % kernel) * channels + c];
        }
        y[i] = acc;
      }
    });
  }

  // Channels in SIMD lanes: y[r, c..c+w) accumulates h[c.., pos - s] hist[r, s, c..]; the
  // filter is read transposed a block of channels at a time (it is (channels, len)).
  template <class T>
  static void causal_conv_step(host_context& ctx, index_t rows, index_t channels, const T* hist, index_t max_len,
                               const T* h, index_t ldh, const index_t* pos, T* y) {
    constexpr index_t block = 64;
    const index_t blocks = (channels + block - 1) / block, tasks = rows * blocks;
    index_t longest = 0;
    for (index_t r = 0; r < rows; ++r) longest = std::max(longest, pos[r] + 1);
    const int threads = std::max(1, std::min<int>(ctx.threads(), int(tasks)));
    auto& bufs = ctx.scratch<decode_scratch, T>(threads, std::size_t(block * longest + block));
    const bool parallel = threads > 1 && double(tasks) * double(longest) * block > 1e5;
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (parallel)
    for (index_t task = 0; task < tasks; ++task) {
      const index_t r = task / blocks, c0 = (task % blocks) * block, cw = std::min(block, channels - c0);
      const index_t n = pos[r] + 1;
      T* ht = bufs[std::size_t(thread_index())].data();  // (n, cw): lag-major filter block
      T* acc = ht + block * longest;
      for (index_t c = 0; c < cw; ++c)
        for (index_t lag = 0; lag < n; ++lag) ht[lag * cw + c] = h[(c0 + c) * ldh + lag];
      std::fill(acc, acc + cw, T(0));
      for (index_t s = 0; s < n; ++s) {
        const T* hrow = ht + (n - 1 - s) * cw;
        const T* x = hist + (r * max_len + s) * channels + c0;
#pragma omp simd
        for (index_t c = 0; c < cw; ++c) acc[c] += hrow[c] * x[c];
      }
      std::copy(acc, acc + cw, y + r * channels + c0);
    }
  }

  template <class T>
  static void modal_step(host_context& ctx, index_t rows, index_t channels, index_t modes, const T* poles,
                         const T* residues, T* state, const T* w, T* y) {
    parallel_ranges(ctx, rows * channels, std::max<index_t>(1, 4096 / std::max<index_t>(modes, 1)),
                    [&](index_t lo, index_t hi) {
                      for (index_t i = lo; i < hi; ++i) {
                        const index_t c = i % channels;
                        const T* lam = poles + c * modes * 2;
                        const T* res = residues + c * modes * 2;
                        T* s = state + i * modes * 2;
                        const T x = w[i];
                        T acc = 0;
                        for (index_t k = 0; k < modes; ++k) {
                          const T re = lam[2 * k] * s[2 * k] - lam[2 * k + 1] * s[2 * k + 1] + x;
                          const T im = lam[2 * k] * s[2 * k + 1] + lam[2 * k + 1] * s[2 * k];
                          s[2 * k] = re;
                          s[2 * k + 1] = im;
                          acc += res[2 * k] * re - res[2 * k + 1] * im;
                        }
                        y[i] = acc;
                      }
                    });
  }
};

}  // namespace hyena::backend
