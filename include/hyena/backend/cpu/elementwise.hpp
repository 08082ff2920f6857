// cpu/elementwise.hpp: xsimd-vectorized, OpenMP-threaded versions of cpu_ref/elementwise.hpp.
#pragma once
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

template <class Base>
struct cpu_elementwise_ops : Base {
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
  static void add_bias(host_context& ctx, index_t rows, index_t cols, const T* bias, T* y) {
    parallel_ranges(ctx, rows, std::max<index_t>(1, (1 << 14) / std::max<index_t>(cols, 1)), [&](index_t lo, index_t hi) {
      host_context serial(1);
      for (index_t r = lo; r < hi; ++r) simd_binary(serial, cols, static_cast<const T*>(y + r * cols), bias, y + r * cols, [](auto u, auto v) { return u + v; });
    });
  }
};

}  // namespace hyena::backend
