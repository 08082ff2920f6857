// cpu/norm.hpp: fast LayerNorm / RMSNorm (same contract as cpu_ref/norm.hpp).
//
// Row statistics and the dx pass are threaded over rows and vectorised with xsimd,
// with sums flushed into doubles (simd_sum). The parameter gradients are column sums
// over all rows: they are threaded over column tiles instead (no races, no per-thread
// buffers), summed in T over blocks of 32 rows and flushed into doubles.
#pragma once
#include <algorithm>
#include <cmath>

#include "../context.hpp"
#include "elementwise.hpp"

namespace hyena::backend {

namespace detail {
// Rows per thread so each thread gets at least ~16K elements.
inline index_t norm_rows_per_thread(index_t cols) { return std::max<index_t>(1, (1 << 14) / std::max<index_t>(cols, 1)); }

// For c in [0, cols): dweight[c] += sum_r dy[r, c] * xhat(r, c) and, when dbias is
// given, dbias[c] += sum_r dy[r, c], with xhat(r, c) = (x[r, c] - shift(r)) * scale(r).
template <class T, class Shift, class Scale>
void norm_param_grads(host_context& ctx, index_t rows, index_t cols, const T* x, const T* dy, Shift shift,
                      Scale scale, T* dweight, T* dbias) {
  constexpr index_t tile = 128, row_block = 32;
  index_t tiles = (cols + tile - 1) / tile;
  parallel_ranges(ctx, tiles, std::max<index_t>(1, (1 << 16) / std::max<index_t>(rows * tile, 1)),
                  [&](index_t t0, index_t t1) {
    for (index_t t = t0; t < t1; ++t) {
      index_t c0 = t * tile, w = std::min(cols, c0 + tile) - c0;
      double sw[tile] = {}, sb[tile] = {};
      // Partial sums over a block of rows in T (vectorises), flushed into double.
      for (index_t r0 = 0; r0 < rows; r0 += row_block) {
        T pw[tile] = {}, pb[tile] = {};
        for (index_t r = r0; r < std::min(rows, r0 + row_block); ++r) {
          const T* xr = x + r * cols + c0;
          const T* dyr = dy + r * cols + c0;
          const T m = T(shift(r)), s = T(scale(r));
          for (index_t c = 0; c < w; ++c) {
            pw[c] += dyr[c] * ((xr[c] - m) * s);
            pb[c] += dyr[c];
          }
        }
        for (index_t c = 0; c < w; ++c) {
          sw[c] += double(pw[c]);
          sb[c] += double(pb[c]);
        }
      }
      for (index_t c = 0; c < w; ++c) {
        dweight[c0 + c] += T(sw[c]);
        if (dbias) dbias[c0 + c] += T(sb[c]);
      }
    }
  });
}
}  // namespace detail

template <class Base>
struct cpu_norm_ops : Base {
  template <class T>
  static void layer_norm_forward(host_context& ctx, index_t rows, index_t cols, const T* x, const T* weight,
                                 const T* bias, double eps, T* y, T* mean, T* rstd) {
    parallel_ranges(ctx, rows, detail::norm_rows_per_thread(cols), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        double m = simd_sum<T>(cols, [&](auto tag, index_t i) { return simd_load<decltype(tag)>(xr + i); }) / double(cols);
        const T mt = T(m);
        // Centred second pass, as in cpu_ref (no cancellation).
        double var = simd_sum<T>(cols, [&](auto tag, index_t i) {
          using V = decltype(tag);
          V d = simd_load<V>(xr + i) - V(mt);
          return d * d;
        }) / double(cols);
        const T rs = T(1.0 / std::sqrt(var + eps));
        simd_for<T>(0, cols, [&](auto tag, index_t i) {
          using V = decltype(tag);
          V xhat = (simd_load<V>(xr + i) - V(mt)) * V(rs);
          simd_store(xhat * simd_load<V>(weight + i) + simd_load<V>(bias + i), yr + i);
        });
        mean[r] = mt;
        rstd[r] = rs;
      }
    });
  }

  template <class T>
  static void layer_norm_backward(host_context& ctx, index_t rows, index_t cols, const T* x, const T* weight,
                                  const T* mean, const T* rstd, const T* dy, T* dx, T* dweight, T* dbias) {
    if (dx) {
      parallel_ranges(ctx, rows, detail::norm_rows_per_thread(cols), [&](index_t lo, index_t hi) {
        for (index_t r = lo; r < hi; ++r) {
          const T* xr = x + r * cols;
          const T* dyr = dy + r * cols;
          T* dxr = dx + r * cols;
          const T m = mean[r], rs = rstd[r];
          const T sg = T(simd_sum<T>(cols, [&](auto tag, index_t i) {
            using V = decltype(tag);
            return simd_load<V>(dyr + i) * simd_load<V>(weight + i);
          }) / double(cols));
          const T sgx = T(simd_sum<T>(cols, [&](auto tag, index_t i) {
            using V = decltype(tag);
            return simd_load<V>(dyr + i) * simd_load<V>(weight + i) * ((simd_load<V>(xr + i) - V(m)) * V(rs));
          }) / double(cols));
          simd_for<T>(0, cols, [&](auto tag, index_t i) {
            using V = decltype(tag);
            V xhat = (simd_load<V>(xr + i) - V(m)) * V(rs);
            V g = simd_load<V>(dyr + i) * simd_load<V>(weight + i);
            simd_store(V(rs) * (g - V(sg) - xhat * V(sgx)), dxr + i);
          });
        }
      });
    }
    detail::norm_param_grads(ctx, rows, cols, x, dy, [&](index_t r) { return mean[r]; },
                             [&](index_t r) { return rstd[r]; }, dweight, dbias);
  }

  template <class T>
  static void rms_norm_forward(host_context& ctx, index_t rows, index_t cols, const T* x, const T* weight, double eps,
                               T* y, T* rstd) {
    parallel_ranges(ctx, rows, detail::norm_rows_per_thread(cols), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        double ss = simd_sum<T>(cols, [&](auto tag, index_t i) {
          auto v = simd_load<decltype(tag)>(xr + i);
          return v * v;
        });
        const T rs = T(1.0 / std::sqrt(ss / double(cols) + eps));
        simd_for<T>(0, cols, [&](auto tag, index_t i) {
          using V = decltype(tag);
          simd_store(simd_load<V>(xr + i) * V(rs) * simd_load<V>(weight + i), yr + i);
        });
        rstd[r] = rs;
      }
    });
  }

  template <class T>
  static void rms_norm_backward(host_context& ctx, index_t rows, index_t cols, const T* x, const T* weight,
                                const T* rstd, const T* dy, T* dx, T* dweight) {
    if (dx) {
      parallel_ranges(ctx, rows, detail::norm_rows_per_thread(cols), [&](index_t lo, index_t hi) {
        for (index_t r = lo; r < hi; ++r) {
          const T* xr = x + r * cols;
          const T* dyr = dy + r * cols;
          T* dxr = dx + r * cols;
          const T rs = rstd[r];
          const T sgx = T(simd_sum<T>(cols, [&](auto tag, index_t i) {
            using V = decltype(tag);
            return simd_load<V>(dyr + i) * simd_load<V>(weight + i) * (simd_load<V>(xr + i) * V(rs));
          }) / double(cols));
          simd_for<T>(0, cols, [&](auto tag, index_t i) {
            using V = decltype(tag);
            V xhat = simd_load<V>(xr + i) * V(rs);
            simd_store(V(rs) * (simd_load<V>(dyr + i) * simd_load<V>(weight + i) - xhat * V(sgx)), dxr + i);
          });
        }
      });
    }
    detail::norm_param_grads(ctx, rows, cols, x, dy, [](index_t) { return 0.0; }, [&](index_t r) { return rstd[r]; },
                             dweight, static_cast<T*>(nullptr));
  }
};

}  // namespace hyena::backend
