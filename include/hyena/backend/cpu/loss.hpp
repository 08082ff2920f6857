// cpu/loss.hpp: fast versions of the ops in cpu_ref/loss.hpp.
//
// Rows are spread over threads; within a row each pass over the vocabulary is one xsimd
// loop (max, then sum of exponentials, then the fused gradient write). Sums of T lanes
// run over short blocks only and the blocks are added in double, so float sums over a
// 50k vocabulary stay accurate. Per-row results are summed serially afterwards: the
// total is the same whatever the thread count.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../context.hpp"
#include "elementwise.hpp"

namespace hyena::backend {

namespace loss_detail {
struct rows_tag {};    // per-row losses of one call
struct chunks_tag {};  // per-chunk partial sums of one call
struct ids_tag {};     // per-thread token ids (top-k selection)
}  // namespace loss_detail

namespace loss_simd {

template <class T>
using batch = xsimd::batch<T>;
template <class T>
inline constexpr index_t width = static_cast<index_t>(batch<T>::size);

// max_i x[i]
template <class T>
T row_max(const T* x, index_t n) {
  constexpr index_t w = width<T>;
  T m = -std::numeric_limits<T>::infinity();
  index_t i = 0;
  if (n >= w) {
    batch<T> acc = batch<T>::load_unaligned(x);
    for (i = w; i + w <= n; i += w) acc = xsimd::max(acc, batch<T>::load_unaligned(x + i));
    alignas(64) std::array<T, batch<T>::size> lanes;
    acc.store_aligned(lanes.data());
    for (T v : lanes) m = std::max(m, v);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// sum_i f(i) where vec(i) gives the batch at i and scal(i) one element: lanes sum
// at most `block` elements each, then each block's total is added in double.
template <class T, class Vec, class Scal>
double blocked_sum(index_t n, Vec&& vec, Scal&& scal) {
  constexpr index_t w = width<T>, block = 32 * w;
  double total = 0;
  index_t i = 0, vec_end = n - n % w;
  while (i < vec_end) {
    batch<T> acc(T(0));
    index_t end = std::min(vec_end, i + block);
    for (; i < end; i += w) acc += vec(i);
    total += double(xsimd::hadd(acc));
  }
  for (; i < n; ++i) total += double(scal(i));
  return total;
}

// Rows per thread so that a thread gets at least ~16k elements of work.
inline index_t rows_per_thread(index_t cols) { return std::max<index_t>(1, (index_t(1) << 14) / std::max<index_t>(cols, 1)); }

// Sums the per-row losses in row order (deterministic) and stores them when asked.
template <class T>
double finish_rows(index_t rows, const std::vector<double>& row_loss, T* losses) {
  double total = 0;
  for (index_t r = 0; r < rows; ++r) {
    total += row_loss[r];
    if (losses) losses[r] = T(row_loss[r]);
  }
  return total;
}

}  // namespace loss_simd

template <class Base>
struct cpu_loss_ops : Base {
  template <class T>
  static double cross_entropy(host_context& ctx, index_t rows, index_t vocab, const T* logits,
                              const std::int32_t* targets, T* losses, T* dlogits, T grad_scale) {
    using namespace loss_simd;
    using B = batch<T>;
    constexpr index_t w = width<T>;
    Base::count_targets(ctx, rows, vocab, targets);  // throws before any thread starts
    auto& row_loss = ctx.scratch<loss_detail::rows_tag, double>(1, static_cast<std::size_t>(rows))[0];  // every row is set
    parallel_ranges(ctx, rows, rows_per_thread(vocab), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const T* x = logits + r * vocab;
        T* g = dlogits ? dlogits + r * vocab : nullptr;
        std::int32_t t = targets[r];
        if (t == ignore_target) {
          row_loss[r] = 0;
          if (g) std::fill(g, g + vocab, T(0));
          continue;
        }
        const T m = row_max(x, vocab);
        const B mb(m);
        double s = blocked_sum<T>(
            vocab, [&](index_t i) { return xsimd::exp(B::load_unaligned(x + i) - mb); },
            [&](index_t i) { return std::exp(x[i] - m); });
        // loss = m + log(s) - x[t], with m - x[t] formed first (no large cancellation).
        row_loss[r] = (double(m) - double(x[t])) + std::log(s);
        if (!g) continue;
        // softmax as exp(x - m) / s keeps the exact shift m rather than a rounded lse.
        const T k = T(double(grad_scale) / s);
        const B kb(k);
        index_t i = 0;
        for (; i + w <= vocab; i += w) (xsimd::exp(B::load_unaligned(x + i) - mb) * kb).store_unaligned(g + i);
        for (; i < vocab; ++i) g[i] = std::exp(x[i] - m) * k;
        g[t] -= grad_scale;
      }
    });
    return finish_rows(rows, row_loss, losses);
  }

  template <class T>
  static double kl_divergence(host_context& ctx, index_t rows, index_t vocab, const T* teacher, const T* student,
                              T temperature, T* losses, T* dstudent, T grad_scale) {
    using namespace loss_simd;
    using B = batch<T>;
    HYENA_CHECK(temperature > T(0), "kl_divergence: temperature must be positive, got ", temperature);
    const T inv_tau = T(1) / temperature;
    const B kb(inv_tau);
    auto& row_loss = ctx.scratch<loss_detail::rows_tag, double>(1, static_cast<std::size_t>(rows))[0];  // every row is set
    parallel_ranges(ctx, rows, rows_per_thread(2 * vocab), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const T* t = teacher + r * vocab;
        const T* s = student + r * vocab;
        T* g = dstudent ? dstudent + r * vocab : nullptr;
        const T mt = row_max(t, vocab), ms = row_max(s, vocab);
        const B mtb(mt), msb(ms);
        double st = blocked_sum<T>(
            vocab, [&](index_t i) { return xsimd::exp((B::load_unaligned(t + i) - mtb) * kb); },
            [&](index_t i) { return std::exp((t[i] - mt) * inv_tau); });
        double ss = blocked_sum<T>(
            vocab, [&](index_t i) { return xsimd::exp((B::load_unaligned(s + i) - msb) * kb); },
            [&](index_t i) { return std::exp((s[i] - ms) * inv_tau); });
        // log p_t - log p_s = (t - s)/tau + c; c is exactly 0 when the rows are identical.
        const T c = T((double(ms) * double(inv_tau) + std::log(ss)) - (double(mt) * double(inv_tau) + std::log(st)));
        // p = exp((x - m)/tau - log(sum)): p_t and p_s are formed by the same expression, with
        // no product after the exp, so FMA contraction cannot make p_s - p_t nonzero for
        // identical rows (exp(.) * (1/sum) would let the compiler fuse one side only).
        const T lt = T(std::log(st)), ls = T(std::log(ss)), gk = grad_scale * inv_tau;
        const B cb(c), ltb(lt), lsb(ls), gkb(gk);
        double kl = blocked_sum<T>(
            vocab,
            [&](index_t i) {
              B tv = B::load_unaligned(t + i), sv = B::load_unaligned(s + i);
              B pt = xsimd::exp((tv - mtb) * kb - ltb);
              if (g) (gkb * (xsimd::exp((sv - msb) * kb - lsb) - pt)).store_unaligned(g + i);
              return pt * ((tv - sv) * kb + cb);
            },
            [&](index_t i) {
              T pt = std::exp((t[i] - mt) * inv_tau - lt);
              if (g) g[i] = gk * (std::exp((s[i] - ms) * inv_tau - ls) - pt);
              return pt * ((t[i] - s[i]) * inv_tau + c);
            });
        row_loss[r] = std::max(kl, 0.0);  // KL >= 0; clamp rounding below it
      }
    });
    return finish_rows(rows, row_loss, losses);
  }

  template <class T>
  static double reverse_kl_divergence(host_context& ctx, index_t rows, index_t vocab, const T* teacher,
                                      const T* student, T temperature, T* losses, T* dstudent, T grad_scale) {
    HYENA_CHECK(temperature > T(0), "reverse_kl_divergence: temperature must be positive, got ", temperature);
    auto& row_loss = ctx.scratch<loss_detail::rows_tag, double>(1, static_cast<std::size_t>(rows))[0];
    parallel_ranges(ctx, rows, loss_simd::rows_per_thread(4 * vocab), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r)
        row_loss[r] = Base::reverse_kl_row(vocab, teacher + r * vocab, student + r * vocab, double(temperature),
                                           dstudent ? dstudent + r * vocab : nullptr, double(grad_scale));
    });
    return loss_simd::finish_rows(rows, row_loss, losses);
  }

  template <class T>
  static double topk_kl_divergence(host_context& ctx, index_t rows, index_t vocab, index_t k, const T* teacher,
                                   const T* student, T temperature, T* losses, T* dstudent, T grad_scale) {
    HYENA_CHECK(temperature > T(0), "topk_kl_divergence: temperature must be positive, got ", temperature);
    HYENA_CHECK(k >= 1, "topk_kl_divergence: k must be >= 1, got ", k);
    auto& row_loss = ctx.scratch<loss_detail::rows_tag, double>(1, static_cast<std::size_t>(rows))[0];
    const int slots = std::max(1, ctx.threads());
    auto& ids = ctx.scratch<loss_detail::ids_tag, index_t>(slots, static_cast<std::size_t>(vocab));
    parallel_ranges(ctx, rows, loss_simd::rows_per_thread(4 * vocab), [&](index_t lo, index_t hi) {
      index_t* buf = ids[static_cast<std::size_t>(thread_index())].data();
      for (index_t r = lo; r < hi; ++r)
        row_loss[r] = Base::topk_kl_row(vocab, std::min(k, vocab), teacher + r * vocab, student + r * vocab,
                                        double(temperature), dstudent ? dstudent + r * vocab : nullptr,
                                        double(grad_scale), buf);
    });
    return loss_simd::finish_rows(rows, row_loss, losses);
  }

  template <class T>
  static double mse(host_context& ctx, index_t n, const T* a, const T* b, T* da, T grad_scale) {
    using namespace loss_simd;
    using B = batch<T>;
    constexpr index_t chunk = index_t(1) << 13;
    const index_t chunks = (n + chunk - 1) / chunk;
    auto& part = ctx.scratch<loss_detail::chunks_tag, double>(1, static_cast<std::size_t>(chunks))[0];  // every chunk is set
    const T k = T(2) * grad_scale;
    const B kb(k);
    parallel_ranges(ctx, chunks, 2, [&](index_t lo, index_t hi) {
      for (index_t c = lo; c < hi; ++c) {
        index_t off = c * chunk, len = std::min(chunk, n - off);
        const T* x = a + off;
        const T* y = b + off;
        T* g = da ? da + off : nullptr;
        part[c] = blocked_sum<T>(
            len,
            [&](index_t i) {
              B d = B::load_unaligned(x + i) - B::load_unaligned(y + i);
              if (g) (kb * d).store_unaligned(g + i);
              return d * d;
            },
            [&](index_t i) {
              T d = x[i] - y[i];
              if (g) g[i] = k * d;
              return d * d;
            });
      }
    });
    double total = 0;
    for (index_t c = 0; c < chunks; ++c) total += part[c];
    return total;
  }
};

}  // namespace hyena::backend
