// cpu/elementwise.hpp: xsimd-vectorized, OpenMP-threaded versions of cpu_ref/elementwise.hpp.
#pragma once
#include <algorithm>
#include <numbers>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../context.hpp"

namespace hyena::backend {

// Runs fn(begin, end) over [0, n) split across the context's threads, but only
// when the work is large enough to pay for waking them.
template <class Fn>
inline void parallel_ranges(host_context& ctx, index_t n, index_t min_per_thread, Fn&& fn) {
  int threads = static_cast<int>(std::min<index_t>(ctx.threads(), std::max<index_t>(1, n / min_per_thread)));
  if (threads <= 1) {
    fn(index_t(0), n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    index_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    index_t t = 0, nt = 1;
#endif
    index_t chunk = (n + nt - 1) / nt;
    index_t b = std::min(n, t * chunk), e = std::min(n, b + chunk);
    if (b < e) fn(b, e);
  }
}

// Applies a binary SIMD functor over [0, n): y[i] = f(a[i], b[i]).
template <class T, class F>
inline void simd_binary(host_context& ctx, index_t n, const T* a, const T* b, T* y, F f) {
  using batch = xsimd::batch<T>;
  constexpr index_t w = static_cast<index_t>(batch::size);
  parallel_ranges(ctx, n, 1 << 15, [&](index_t lo, index_t hi) {
    index_t i = lo;
    for (; i + w <= hi; i += w) f(batch::load_unaligned(a + i), batch::load_unaligned(b + i)).store_unaligned(y + i);
    for (; i < hi; ++i) y[i] = f(a[i], b[i]);
  });
}

// Loads / stores one step of a loop that is generic over V = xsimd::batch<T> or V = T,
// so a single lambda body serves the vector part and the scalar tail.
template <class V, class T>
inline V simd_load(const T* p) {
  if constexpr (std::is_arithmetic_v<V>) return *p;
  else return V::load_unaligned(p);
}
template <class V, class T>
inline void simd_store(const V& v, T* p) {
  if constexpr (std::is_arithmetic_v<V>) *p = v;
  else v.store_unaligned(p);
}

// Calls f(V{}, i) for i in [lo, hi): whole batches first, then scalars.
template <class T, class F>
inline void simd_for(index_t lo, index_t hi, F&& f) {
  using batch = xsimd::batch<T>;
  constexpr index_t w = static_cast<index_t>(batch::size);
  const index_t vec_end = lo + (hi - lo) / w * w;
  for (index_t i = lo; i < vec_end; i += w) f(batch{}, i);
  for (index_t i = vec_end; i < hi; ++i) f(T{}, i);
}

// Sum over [0, n) of f(V{}, i), returned in double. Lanes accumulate in T for at most
// 64 batches before flushing into the double total, so long rows stay accurate in fp32.
template <class T, class F>
inline double simd_sum(index_t n, F&& f) {
  using batch = xsimd::batch<T>;
  constexpr index_t w = static_cast<index_t>(batch::size);
  const index_t vec_end = n - n % w;
  double total = 0;
  index_t i = 0;
  while (i < vec_end) {
    index_t end = std::min(vec_end, i + 64 * w);
    batch acc(T(0));
    for (; i < end; i += w) acc += f(batch{}, i);
    total += double(xsimd::hadd(acc));
  }
  for (; i < n; ++i) total += double(f(T{}, i));
  return total;
}

// y[i] += a[i] over [0, n), on one thread (a building block of the threaded sums below and in conv.hpp).
template <class T>
inline void add_into(index_t n, const T* a, T* y) {
  using batch = xsimd::batch<T>;
  constexpr index_t w = static_cast<index_t>(batch::size);
  index_t i = 0;
  for (; i + w <= n; i += w) (batch::load_unaligned(a + i) + batch::load_unaligned(y + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] += a[i];
}

struct bias_grad_tag {};  // context scratch key: bias_grad's per-thread column sums

template <class Base>
struct cpu_elementwise_ops : Base {
  // In double over the threads (a fixed static split: the same sum for the same thread count).
  template <class T>
  static double sum_squares(host_context& ctx, index_t n, const T* x) {
    double s = 0;
    const int threads = n >= (index_t(1) << 16) ? ctx.threads() : 1;
#pragma omp parallel for reduction(+ : s) schedule(static) num_threads(threads) if (threads > 1)
    for (index_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
    return s;
  }
  template <class T>
  static void add(host_context& ctx, index_t n, const T* a, const T* b, T* y) {
    simd_binary(ctx, n, a, b, y, [](auto x, auto z) { return x + z; });
  }
  template <class T>
  static void mul(host_context& ctx, index_t n, const T* a, const T* b, T* y) {
    simd_binary(ctx, n, a, b, y, [](auto x, auto z) { return x * z; });
  }
  template <class T>
  static void axpy(host_context& ctx, index_t n, T alpha, const T* x, T* y) {
    simd_binary(ctx, n, x, static_cast<const T*>(y), y, [alpha](auto xv, auto yv) { return xv * alpha + yv; });
  }
  template <class T>
  static void scale(host_context& ctx, index_t n, T alpha, T* y) {
    simd_binary(ctx, n, static_cast<const T*>(y), static_cast<const T*>(y), y, [alpha](auto yv, auto) { return yv * alpha; });
  }
  template <class T>
  static void axpby(host_context& ctx, index_t n, T alpha, const T* x, T beta, T* y) {
    simd_binary(ctx, n, x, static_cast<const T*>(y), y,
                [alpha, beta](auto xv, auto yv) { return xv * alpha + yv * beta; });
  }
  template <class T>
  static void add_bias(host_context& ctx, index_t rows, index_t cols, const T* bias, T* y) {
    parallel_ranges(ctx, rows, std::max<index_t>(1, (1 << 14) / std::max<index_t>(cols, 1)), [&](index_t lo, index_t hi) {
      host_context serial(1);
      for (index_t r = lo; r < hi; ++r) simd_binary(serial, cols, static_cast<const T*>(y + r * cols), bias, y + r * cols, [](auto u, auto v) { return u + v; });
    });
  }

  // dbias[c] += sum over rows of dy[r][c], as cpu_ref's. Each thread adds a block of whole rows
  // into its own column sums (a row of floats, in L1), which are then added in thread order:
  // the threads stream dy's rows once, and the same thread count gives the same sums.
  template <class T>
  static void bias_grad(host_context& ctx, index_t rows, index_t cols, const T* dy, T* dbias) {
    if (rows <= 0 || cols <= 0) return;
    const int slots = ctx.threads();
    auto& sums = ctx.scratch<bias_grad_tag, T>(slots, static_cast<std::size_t>(cols));
    for (int t = 0; t < slots; ++t) std::fill(sums[t].begin(), sums[t].begin() + cols, T(0));
    parallel_ranges(ctx, rows, std::max<index_t>(1, (1 << 14) / cols), [&](index_t lo, index_t hi) {
      T* s = sums[thread_index()].data();
      for (index_t r = lo; r < hi; ++r) add_into(cols, dy + r * cols, s);
    });
    for (index_t c = 0; c < cols; ++c) {
      T total = 0;
      for (int t = 0; t < slots; ++t) total += sums[t][c];
      dbias[c] += total;
    }
  }
  template <class T>
  static void gelu_forward(host_context& ctx, index_t n, const T* x, T* y) {
    const T inv_sqrt2 = T(1 / std::numbers::sqrt2);
    parallel_ranges(ctx, n, 1 << 13, [&](index_t lo, index_t hi) {
      simd_for<T>(lo, hi, [&](auto tag, index_t i) {
        using V = decltype(tag);
        V v = simd_load<V>(x + i);
        simd_store(V(T(0.5)) * v * (V(T(1)) + xsimd::erf(v * inv_sqrt2)), y + i);
      });
    });
  }
  // Pointwise: each step loads before it stores, so dx may alias dy.
  template <class T>
  static void gelu_backward(host_context& ctx, index_t n, const T* x, const T* dy, T* dx) {
    const T inv_sqrt2 = T(1 / std::numbers::sqrt2);
    const T inv_sqrt_2pi = T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
    parallel_ranges(ctx, n, 1 << 13, [&](index_t lo, index_t hi) {
      simd_for<T>(lo, hi, [&](auto tag, index_t i) {
        using V = decltype(tag);
        V v = simd_load<V>(x + i);
        V d = V(T(0.5)) * (V(T(1)) + xsimd::erf(v * inv_sqrt2)) + v * xsimd::exp(V(T(-0.5)) * v * v) * inv_sqrt_2pi;
        simd_store(simd_load<V>(dy + i) * d, dx + i);
      });
    });
  }
  template <class T>
  static void swiglu_forward(host_context& ctx, index_t rows, index_t width, const T* gate_up, T* y) {
    parallel_ranges(ctx, rows, std::max<index_t>(1, (1 << 13) / std::max<index_t>(width, 1)), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const T* g = gate_up + r * 2 * width;
        const T* u = g + width;
        T* yr = y + r * width;
        simd_for<T>(0, width, [&](auto tag, index_t c) {
          using V = decltype(tag);
          V gv = simd_load<V>(g + c);
          simd_store(gv / (V(T(1)) + xsimd::exp(-gv)) * simd_load<V>(u + c), yr + c);
        });
      }
    });
  }
  template <class T>
  static void swiglu_backward(host_context& ctx, index_t rows, index_t width, const T* gate_up, const T* dy,
                              T* dgate_up) {
    parallel_ranges(ctx, rows, std::max<index_t>(1, (1 << 13) / std::max<index_t>(width, 1)), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const T* g = gate_up + r * 2 * width;
        const T* u = g + width;
        const T* dyr = dy + r * width;
        T* dg = dgate_up + r * 2 * width;
        T* du = dg + width;
        simd_for<T>(0, width, [&](auto tag, index_t c) {
          using V = decltype(tag);
          V gv = simd_load<V>(g + c), uv = simd_load<V>(u + c), d = simd_load<V>(dyr + c);
          V s = V(T(1)) / (V(T(1)) + xsimd::exp(-gv));
          simd_store(d * uv * s * (V(T(1)) + gv * (V(T(1)) - s)), dg + c);
          simd_store(d * gv * s, du + c);
        });
      }
    });
  }
};

}  // namespace hyena::backend
