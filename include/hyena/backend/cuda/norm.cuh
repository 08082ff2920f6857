// cuda/norm.cuh: LayerNorm and RMSNorm over rows, mirroring cpu_ref/norm.hpp. One block per
// row with block (warp-shuffle) reductions in double; parameter grads by column reduction.
#pragma once
#include "common.cuh"

namespace hyena::backend {

namespace cuda_detail {

template <class T>
__global__ void __launch_bounds__(512) layer_norm_forward_kernel(index_t cols, const T* x, const T* weight,
                                                                 const T* bias, double eps, T* y, T* mean, T* rstd) {
  __shared__ double sh[33];
  index_t r = blockIdx.x;
  const T* xr = x + r * cols;
  double s = 0;
  for (index_t c = threadIdx.x; c < cols; c += blockDim.x) s += double(xr[c]);
  double m = block_sum(s, sh) / double(cols);
  // Two passes, as the oracle: the centred sum does not cancel.
  double v = 0;
  for (index_t c = threadIdx.x; c < cols; c += blockDim.x) v += (double(xr[c]) - m) * (double(xr[c]) - m);
  double rs = 1.0 / sqrt(block_sum(v, sh) / double(cols) + eps);
  for (index_t c = threadIdx.x; c < cols; c += blockDim.x)
    y[r * cols + c] = T((double(xr[c]) - m) * rs * double(weight[c]) + double(bias[c]));
  if (threadIdx.x == 0) {
    mean[r] = T(m);
    rstd[r] = T(rs);
  }
}

template <class T>
__global__ void __launch_bounds__(512)
    layer_norm_dx_kernel(index_t cols, const T* x, const T* weight, const T* mean, const T* rstd, const T* dy, T* dx) {
  __shared__ double sh[33];
  index_t r = blockIdx.x;
  const T* xr = x + r * cols;
  const T* dyr = dy + r * cols;
  double m = mean[r], rs = rstd[r];
  double sg = 0, sgx = 0;
  for (index_t c = threadIdx.x; c < cols; c += blockDim.x) {
    double xhat = (double(xr[c]) - m) * rs, g = double(dyr[c]) * double(weight[c]);
    sg += g;
    sgx += g * xhat;
  }
  sg = block_sum(sg, sh) / double(cols);
  sgx = block_sum(sgx, sh) / double(cols);
  for (index_t c = threadIdx.x; c < cols; c += blockDim.x) {
    double xhat = (double(xr[c]) - m) * rs;
    dx[r * cols + c] = T(rs * (double(dyr[c]) * double(weight[c]) - sg - xhat * sgx));
  }
}

template <class T>
__global__ void __launch_bounds__(512)
    rms_norm_forward_kernel(index_t cols, const T* x, const T* weight, double eps, T* y, T* rstd) {
  __shared__ double sh[33];
  index_t r = blockIdx.x;
  const T* xr = x + r * cols;
  double ss = 0;
  for (index_t c = threadIdx.x; c < cols; c += blockDim.x) ss += double(xr[c]) * double(xr[c]);
  double rs = 1.0 / sqrt(block_sum(ss, sh) / double(cols) + eps);
  for (index_t c = threadIdx.x; c < cols; c += blockDim.x) y[r * cols + c] = T(double(xr[c]) * rs * double(weight[c]));
  if (threadIdx.x == 0) rstd[r] = T(rs);
}

template <class T>
__global__ void __launch_bounds__(512)
    rms_norm_dx_kernel(index_t cols, const T* x, const T* weight, const T* rstd, const T* dy, T* dx) {
  __shared__ double sh[33];
  index_t r = blockIdx.x;
  const T* xr = x + r * cols;
  const T* dyr = dy + r * cols;
  double rs = rstd[r];
  double sgx = 0;
  for (index_t c = threadIdx.x; c < cols; c += blockDim.x)
    sgx += double(dyr[c]) * double(weight[c]) * double(xr[c]) * rs;
  sgx = block_sum(sgx, sh) / double(cols);
  for (index_t c = threadIdx.x; c < cols; c += blockDim.x) {
    double xhat = double(xr[c]) * rs;
    dx[r * cols + c] = T(rs * (double(dyr[c]) * double(weight[c]) - xhat * sgx));
  }
}

// dy * xhat for LayerNorm's weight grad (mean present) and RMSNorm's (mean null).
template <class T>
struct norm_weight_term {
  const T *x, *dy, *mean, *rstd;
  index_t cols;
  __device__ double operator()(index_t r, index_t c) const {
    double m = mean ? double(mean[r]) : 0.0;
    return double(dy[r * cols + c]) * ((double(x[r * cols + c]) - m) * double(rstd[r]));
  }
};

// Threads per row block: a warp multiple, no more than the row needs (up to 512).
inline int row_threads(index_t cols) {
  index_t t = (cols + 31) / 32 * 32;
  return int(t < 32 ? 32 : (t > 512 ? 512 : t));
}

inline void check_rows(index_t rows, const char* op) {
  HYENA_CHECK(rows <= index_t(0x7fffffff), op, ": ", rows, " rows exceed the grid limit");
}

}  // namespace cuda_detail

struct cuda_norm_ops {
  template <class T>
  static void layer_norm_forward(cuda_context& ctx, index_t rows, index_t cols, const T* x, const T* weight,
                                 const T* bias, double eps, T* y, T* mean, T* rstd) {
    if (rows <= 0 || cols <= 0) return;
    cuda_detail::check_rows(rows, "layer_norm_forward");
    cuda_detail::layer_norm_forward_kernel<<<unsigned(rows), cuda_detail::row_threads(cols), 0, ctx.stream()>>>(
        cols, x, weight, bias, eps, y, mean, rstd);
    HYENA_CUDA_CHECK_LAUNCH("layer_norm_forward_kernel");
  }

  template <class T>
  static void layer_norm_backward(cuda_context& ctx, index_t rows, index_t cols, const T* x, const T* weight,
                                  const T* mean, const T* rstd, const T* dy, T* dx, T* dweight, T* dbias) {
    if (rows <= 0 || cols <= 0) return;
    cuda_detail::check_rows(rows, "layer_norm_backward");
    if (dx) {
      cuda_detail::layer_norm_dx_kernel<<<unsigned(rows), cuda_detail::row_threads(cols), 0, ctx.stream()>>>(
          cols, x, weight, mean, rstd, dy, dx);
      HYENA_CUDA_CHECK_LAUNCH("layer_norm_dx_kernel");
    }
    if (dweight)
      cuda_detail::column_reduce_add(ctx, rows, cols, cuda_detail::norm_weight_term<T>{x, dy, mean, rstd, cols},
                                     dweight);
    if (dbias) cuda_detail::column_reduce_add(ctx, rows, cols, cuda_detail::column_of<T>{dy, cols}, dbias);
  }

  template <class T>
  static void rms_norm_forward(cuda_context& ctx, index_t rows, index_t cols, const T* x, const T* weight, double eps,
                               T* y, T* rstd) {
    if (rows <= 0 || cols <= 0) return;
    cuda_detail::check_rows(rows, "rms_norm_forward");
    cuda_detail::rms_norm_forward_kernel<<<unsigned(rows), cuda_detail::row_threads(cols), 0, ctx.stream()>>>(
        cols, x, weight, eps, y, rstd);
    HYENA_CUDA_CHECK_LAUNCH("rms_norm_forward_kernel");
  }

  template <class T>
  static void rms_norm_backward(cuda_context& ctx, index_t rows, index_t cols, const T* x, const T* weight,
                                const T* rstd, const T* dy, T* dx, T* dweight) {
    if (rows <= 0 || cols <= 0) return;
    cuda_detail::check_rows(rows, "rms_norm_backward");
    if (dx) {
      cuda_detail::rms_norm_dx_kernel<<<unsigned(rows), cuda_detail::row_threads(cols), 0, ctx.stream()>>>(
          cols, x, weight, rstd, dy, dx);
      HYENA_CUDA_CHECK_LAUNCH("rms_norm_dx_kernel");
    }
    if (dweight)
      cuda_detail::column_reduce_add(ctx, rows, cols, cuda_detail::norm_weight_term<T>{x, dy, nullptr, rstd, cols},
                                     dweight);
  }
};

}  // namespace hyena::backend
