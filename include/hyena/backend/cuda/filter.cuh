// cuda/filter.cuh: the small ops of the Hyena implicit filter, mirroring cpu_ref/filter.hpp
// (sin activation, exponential decay window, the D skip term, strided block copies).
#pragma once
#include "../cpu_ref/filter.hpp"  // decay_rate and the shared size check
#include "common.cuh"

namespace hyena::backend {

namespace cuda_detail {

template <class T>
__global__ void sin_forward_kernel(index_t rows, index_t cols, const T* freq, const T* x, T* y) {
  HYENA_GRID_LOOP(i, rows * cols) y[i] = T(sin(double(freq[i % cols]) * double(x[i])));
}
// dx may alias dy: one thread reads, then writes, each element.
template <class T>
__global__ void sin_dx_kernel(index_t rows, index_t cols, const T* freq, const T* x, const T* dy, T* dx) {
  HYENA_GRID_LOOP(i, rows * cols) {
    double fr = freq[i % cols];
    dx[i] = T(double(dy[i]) * fr * cos(fr * double(x[i])));
  }
}
template <class T>
struct sin_freq_term {
  const T *freq, *x, *dy;
  index_t cols;
  __device__ double operator()(index_t r, index_t c) const {
    double xv = x[r * cols + c];
    return double(dy[r * cols + c]) * xv * cos(double(freq[c]) * xv);
  }
};

// The same spread as ref_filter_ops::decay_rate, on the device.
__device__ inline double decay_rate_dev(index_t c, index_t channels, double first, double last) {
  double f = channels > 1 ? double(c) / double(channels - 1) : 0.0;
  return fabs(first + (last - first) * f);
}
// Thread per (c, n): h[c, n] = k[n, c] window (forward), or dk[n, c] = dh[c, n] window (backward).
template <class T>
__global__ void decay_window_kernel(index_t seq, index_t channels, double t_step, double first, double last,
                                    const T* src, T* dst, index_t h_stride, bool to_filter) {
  HYENA_GRID_LOOP(i, seq * channels) {
    index_t n = i % seq, c = i / seq;
    double w = exp(-decay_rate_dev(c, channels, first, last) * double(n) * t_step);
    if (to_filter)
      dst[c * h_stride + n] = T(double(src[n * channels + c]) * w);
    else
      dst[n * channels + c] = T(double(src[c * h_stride + n]) * w);
  }
}
template <class T>
__global__ void scale_add_kernel(index_t rows, index_t cols, const T* scale, const T* x, T* y) {
  HYENA_GRID_LOOP(i, rows * cols) y[i] += scale[i % cols] * x[i];
}
template <class T>
struct product_term {
  const T *a, *b;
  index_t cols;
  __device__ double operator()(index_t r, index_t c) const { return double(a[r * cols + c]) * double(b[r * cols + c]); }
};

}  // namespace cuda_detail

struct cuda_filter_ops {
  template <class T>
  static void sin_forward(cuda_context& ctx, index_t rows, index_t cols, const T* freq, const T* x, T* y) {
    if (rows <= 0 || cols <= 0) return;
    const unsigned blocks = cuda_detail::grid_for(ctx, rows * cols);
    cuda_detail::sin_forward_kernel<<<blocks, cuda_detail::block_threads, 0, ctx.stream()>>>(rows, cols, freq, x, y);
    HYENA_CUDA_CHECK_LAUNCH("sin_forward_kernel");
  }

  // dfreq is reduced first: dx may alias dy and would overwrite what the reduction reads.
  template <class T>
  static void sin_backward(cuda_context& ctx, index_t rows, index_t cols, const T* freq, const T* x, const T* dy, T* dx,
                           T* dfreq) {
    if (rows <= 0 || cols <= 0) return;
    if (dfreq) cuda_detail::column_reduce_add(ctx, rows, cols, cuda_detail::sin_freq_term<T>{freq, x, dy, cols}, dfreq);
    if (dx) {
      const unsigned blocks = cuda_detail::grid_for(ctx, rows * cols);
      cuda_detail::sin_dx_kernel<<<blocks, cuda_detail::block_threads, 0, ctx.stream()>>>(rows, cols, freq, x, dy, dx);
      HYENA_CUDA_CHECK_LAUNCH("sin_dx_kernel");
    }
  }

  template <class T>
  static void decay_window_forward(cuda_context& ctx, index_t seq, index_t channels, double t_step, double delta_first,
                                   double delta_last, const T* k, T* h, index_t h_stride) {
    ref_filter_ops::check_window(seq, channels, h_stride);
    if (seq * channels == 0) return;
    cuda_detail::decay_window_kernel<<<cuda_detail::grid_for(ctx, seq * channels), cuda_detail::block_threads, 0,
                                       ctx.stream()>>>(seq, channels, t_step, delta_first, delta_last, k, h, h_stride,
                                                       true);
    HYENA_CUDA_CHECK_LAUNCH("decay_window_kernel");
  }

  template <class T>
  static void decay_window_backward(cuda_context& ctx, index_t seq, index_t channels, double t_step, double delta_first,
                                    double delta_last, const T* dh, index_t h_stride, T* dk) {
    ref_filter_ops::check_window(seq, channels, h_stride);
    if (seq * channels == 0) return;
    cuda_detail::decay_window_kernel<<<cuda_detail::grid_for(ctx, seq * channels), cuda_detail::block_threads, 0,
                                       ctx.stream()>>>(seq, channels, t_step, delta_first, delta_last, dh, dk, h_stride,
                                                       false);
    HYENA_CUDA_CHECK_LAUNCH("decay_window_kernel");
  }

  template <class T>
  static void scale_add(cuda_context& ctx, index_t rows, index_t cols, const T* scale, const T* x, T* y) {
    if (rows <= 0 || cols <= 0) return;
    const unsigned blocks = cuda_detail::grid_for(ctx, rows * cols);
    cuda_detail::scale_add_kernel<<<blocks, cuda_detail::block_threads, 0, ctx.stream()>>>(rows, cols, scale, x, y);
    HYENA_CUDA_CHECK_LAUNCH("scale_add_kernel");
  }

  template <class T>
  static void scale_grad(cuda_context& ctx, index_t rows, index_t cols, const T* x, const T* dy, T* dscale) {
    if (rows <= 0 || cols <= 0) return;
    cuda_detail::column_reduce_add(ctx, rows, cols, cuda_detail::product_term<T>{x, dy, cols}, dscale);
  }

  // A 2-D copy on the stream (cudaMemcpy2DAsync does the pitched rows).
  template <class T>
  static void copy_strided(cuda_context& ctx, index_t rows, index_t cols, const T* src, index_t src_ld, T* dst,
                           index_t dst_ld) {
    if (rows <= 0 || cols <= 0) return;
    HYENA_CHECK(src_ld >= cols && dst_ld >= cols, "copy_strided: row strides ", src_ld, ", ", dst_ld,
                " are shorter than cols ", cols);
    HYENA_CUDA_CHECK(cudaMemcpy2DAsync(dst, sizeof(T) * dst_ld, src, sizeof(T) * src_ld, sizeof(T) * cols,
                                       std::size_t(rows), cudaMemcpyDeviceToDevice, ctx.stream()));
  }
};

}  // namespace hyena::backend
