// cpu/filter.hpp: fast versions of the ops in cpu_ref/filter.hpp (xsimd + OpenMP).
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../context.hpp"
#include "elementwise.hpp"

namespace hyena::backend {

namespace filter_detail {

// out[c] += sum_r row_r[c], where row(r, tmp) writes row r's terms (cols of them) into tmp.
// Each thread sums its rows in T over short blocks that are flushed into double (accurate
// without a double SIMD path); the threads' double partials are then combined.
struct column_sums_tag {};
struct column_blocks_tag {};
struct sin_backward_tag {};

template <class T, class RowFn>
void column_sums(host_context& ctx, index_t rows, index_t cols, RowFn row, T* out) {
  auto& partial = ctx.scratch<column_sums_tag, double>(ctx.threads(), cols);
  auto& buffers = ctx.scratch<column_blocks_tag, T>(ctx.threads(), 2 * cols);  // a block sum and one row
  for (int t = 0; t < ctx.threads(); ++t) std::fill(partial[t].begin(), partial[t].begin() + cols, 0.0);
  parallel_ranges(ctx, rows, std::max<index_t>(1, 8192 / std::max<index_t>(cols, 1)), [&](index_t lo, index_t hi) {
    double* sum = partial[thread_index()].data();
    T* block = buffers[thread_index()].data();
    T* tmp = block + cols;
    std::fill(block, block + cols, T(0));
    index_t since = 0;
    auto flush = [&] {
      for (index_t c = 0; c < cols; ++c) sum[c] += block[c], block[c] = T(0);
    };
    for (index_t r = lo; r < hi; ++r) {
      row(r, tmp);
      for (index_t c = 0; c < cols; ++c) block[c] += tmp[c];
      if (++since == 64) flush(), since = 0;
    }
    flush();
  });
  for (index_t c = 0; c < cols; ++c) {
    double s = 0;
    for (int t = 0; t < ctx.threads(); ++t) s += partial[t][c];
    out[c] += T(s);
  }
}

}  // namespace filter_detail

template <class Base>
struct cpu_filter_ops : Base {
  template <class T>
  static void sin_forward(host_context& ctx, index_t rows, index_t cols, const T* freq, const T* x, T* y) {
    using batch = xsimd::batch<T>;
    constexpr index_t w = static_cast<index_t>(batch::size);
    parallel_ranges(ctx, rows, std::max<index_t>(1, 4096 / std::max<index_t>(cols, 1)), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        index_t c = 0;
        for (; c + w <= cols; c += w)
          xsimd::sin(batch::load_unaligned(freq + c) * batch::load_unaligned(xr + c)).store_unaligned(yr + c);
        for (; c < cols; ++c) yr[c] = std::sin(freq[c] * xr[c]);
      }
    });
  }

  template <class T>
  static void sin_backward(host_context& ctx, index_t rows, index_t cols, const T* freq, const T* x, const T* dy,
                           T* dx, T* dfreq) {
    using batch = xsimd::batch<T>;
    constexpr index_t w = static_cast<index_t>(batch::size);
    // One row of dy cos(freq x) into out (what both gradients share).
    auto dy_cos = [&](index_t r, T* out) {
      const T *xr = x + r * cols, *dyr = dy + r * cols;
      index_t c = 0;
      for (; c + w <= cols; c += w)
        (batch::load_unaligned(dyr + c) * xsimd::cos(batch::load_unaligned(freq + c) * batch::load_unaligned(xr + c)))
            .store_unaligned(out + c);
      for (; c < cols; ++c) out[c] = dyr[c] * std::cos(freq[c] * xr[c]);
    };
    if (dfreq)
      filter_detail::column_sums(ctx, rows, cols, [&](index_t r, T* out) {
        dy_cos(r, out);
        const T* xr = x + r * cols;
        for (index_t c = 0; c < cols; ++c) out[c] *= xr[c];
      }, dfreq);
    // dx last: it may alias dy.
    if (dx) {
      auto& rows_tmp = ctx.scratch<filter_detail::sin_backward_tag, T>(ctx.threads(), cols);
      parallel_ranges(ctx, rows, std::max<index_t>(1, 4096 / std::max<index_t>(cols, 1)), [&](index_t lo, index_t hi) {
        T* tmp = rows_tmp[thread_index()].data();
        for (index_t r = lo; r < hi; ++r) {
          dy_cos(r, tmp);
          for (index_t c = 0; c < cols; ++c) dx[r * cols + c] = tmp[c] * freq[c];
        }
      });
    }
  }

  // The window as a geometric progression per channel, r_c^n with r_c = exp(-|delta_c| t_step),
  // carried in double (relative error ~ n * 1e-16), over tiles of channels.
  template <class T>
  static void decay_window_forward(host_context& ctx, index_t seq, index_t channels, double t_step,
                                   double delta_first, double delta_last, const T* k, T* h, index_t h_stride) {
    Base::check_window(seq, channels, h_stride);
    window_apply(ctx, seq, channels, t_step, delta_first, delta_last,
                 [&](index_t c, index_t n, double wv) { h[c * h_stride + n] = T(double(k[n * channels + c]) * wv); });
  }

  template <class T>
  static void decay_window_backward(host_context& ctx, index_t seq, index_t channels, double t_step,
                                    double delta_first, double delta_last, const T* dh, index_t h_stride, T* dk) {
    Base::check_window(seq, channels, h_stride);
    window_apply(ctx, seq, channels, t_step, delta_first, delta_last,
                 [&](index_t c, index_t n, double wv) { dk[n * channels + c] = T(double(dh[c * h_stride + n]) * wv); });
  }

  template <class T>
  static void scale_add(host_context& ctx, index_t rows, index_t cols, const T* scale, const T* x, T* y) {
    using batch = xsimd::batch<T>;
    constexpr index_t w = static_cast<index_t>(batch::size);
    parallel_ranges(ctx, rows, std::max<index_t>(1, 8192 / std::max<index_t>(cols, 1)), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        index_t c = 0;
        for (; c + w <= cols; c += w)
          xsimd::fma(batch::load_unaligned(scale + c), batch::load_unaligned(xr + c), batch::load_unaligned(yr + c))
              .store_unaligned(yr + c);
        for (; c < cols; ++c) yr[c] += scale[c] * xr[c];
      }
    });
  }

  template <class T>
  static void scale_grad(host_context& ctx, index_t rows, index_t cols, const T* x, const T* dy, T* dscale) {
    using batch = xsimd::batch<T>;
    constexpr index_t w = static_cast<index_t>(batch::size);
    filter_detail::column_sums(ctx, rows, cols, [&](index_t r, T* out) {
      const T *xr = x + r * cols, *dyr = dy + r * cols;
      index_t c = 0;
      for (; c + w <= cols; c += w)
        (batch::load_unaligned(xr + c) * batch::load_unaligned(dyr + c)).store_unaligned(out + c);
      for (; c < cols; ++c) out[c] = xr[c] * dyr[c];
    }, dscale);
  }

  template <class T>
  static void copy_strided(host_context& ctx, index_t rows, index_t cols, const T* src, index_t src_ld, T* dst,
                           index_t dst_ld) {
    parallel_ranges(ctx, rows, std::max<index_t>(1, 16384 / std::max<index_t>(cols, 1)), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) std::copy(src + r * src_ld, src + r * src_ld + cols, dst + r * dst_ld);
    });
  }

 private:
  // fn(c, n, window value) for every (channel, step), threads over channel tiles.
  template <class Fn>
  static void window_apply(host_context& ctx, index_t seq, index_t channels, double t_step, double delta_first,
                           double delta_last, Fn&& fn) {
    constexpr index_t tile = 8;
    parallel_ranges(ctx, channels, 8, [&](index_t lo, index_t hi) {
      for (index_t c0 = lo; c0 < hi; c0 += tile) {
        index_t nc = std::min(tile, hi - c0);
        double ratio[tile], value[tile];
        for (index_t j = 0; j < nc; ++j) {
          ratio[j] = std::exp(-Base::decay_rate(c0 + j, channels, delta_first, delta_last) * t_step);
          value[j] = 1.0;
        }
        for (index_t n = 0; n < seq; ++n)
          for (index_t j = 0; j < nc; ++j) {
            fn(c0 + j, n, value[j]);
            value[j] *= ratio[j];
          }
      }
    });
  }
};

}  // namespace hyena::backend
