// cuda/elementwise.cuh: pointwise maps (grid-stride loops) and row/column reductions,
// mirroring cpu_ref/elementwise.hpp. Activations are evaluated in double like the oracle.
#pragma once
#include "common.cuh"

namespace hyena::backend {

namespace cuda_detail {

template <class T>
__global__ void fill_kernel(index_t n, T value, T* y) {
  HYENA_GRID_LOOP(i, n) y[i] = value;
}
template <class T>
__global__ void copy_kernel(index_t n, const T* x, T* y) {
  HYENA_GRID_LOOP(i, n) y[i] = x[i];
}
template <class T>
__global__ void add_kernel(index_t n, const T* a, const T* b, T* y) {
  HYENA_GRID_LOOP(i, n) y[i] = a[i] + b[i];
}
template <class T>
__global__ void axpy_kernel(index_t n, T alpha, const T* x, T* y) {
  HYENA_GRID_LOOP(i, n) y[i] += alpha * x[i];
}
template <class T>
__global__ void scale_kernel(index_t n, T alpha, T* y) {
  HYENA_GRID_LOOP(i, n) y[i] *= alpha;
}
template <class T>
__global__ void axpby_kernel(index_t n, T alpha, const T* x, T beta, T* y) {
  HYENA_GRID_LOOP(i, n) y[i] = x[i] * alpha + y[i] * beta;
}
template <class T>
__global__ void mul_kernel(index_t n, const T* a, const T* b, T* y) {
  HYENA_GRID_LOOP(i, n) y[i] = a[i] * b[i];
}
template <class T>
__global__ void add_bias_kernel(index_t rows, index_t cols, const T* bias, T* y) {
  HYENA_GRID_LOOP(i, rows * cols) y[i] += bias[i % cols];
}

__device__ inline double gelu_value(double v) { return 0.5 * v * (1.0 + erf(v * 0.70710678118654752440)); }
__device__ inline double gelu_slope(double v) {
  // Phi(v) + v phi(v), phi the standard normal density.
  return 0.5 * (1.0 + erf(v * 0.70710678118654752440)) + v * exp(-0.5 * v * v) * 0.39894228040143267794;
}
template <class T>
__global__ void gelu_forward_kernel(index_t n, const T* x, T* y) {
  HYENA_GRID_LOOP(i, n) y[i] = T(gelu_value(double(x[i])));
}
// dx may alias dy: each element is read, then written, by one thread.
template <class T>
__global__ void gelu_backward_kernel(index_t n, const T* x, const T* dy, T* dx) {
  HYENA_GRID_LOOP(i, n) dx[i] = T(double(dy[i]) * gelu_slope(double(x[i])));
}
template <class T>
__global__ void swiglu_forward_kernel(index_t rows, index_t width, const T* gate_up, T* y) {
  HYENA_GRID_LOOP(i, rows * width) {
    index_t r = i / width, c = i % width;
    double g = gate_up[r * 2 * width + c], u = gate_up[r * 2 * width + width + c];
    y[i] = T(g / (1.0 + exp(-g)) * u);
  }
}
template <class T>
__global__ void swiglu_backward_kernel(index_t rows, index_t width, const T* gate_up, const T* dy, T* dgate_up) {
  HYENA_GRID_LOOP(i, rows * width) {
    index_t r = i / width, c = i % width;
    double g = gate_up[r * 2 * width + c], u = gate_up[r * 2 * width + width + c];
    double s = 1.0 / (1.0 + exp(-g)), d = dy[i];
    dgate_up[r * 2 * width + c] = T(d * u * s * (1.0 + g * (1.0 - s)));
    dgate_up[r * 2 * width + width + c] = T(d * g * s);
  }
}
// Per-block partial sums of squares, in double.
template <class T>
__global__ void sum_squares_kernel(index_t n, const T* x, double* partial) {
  __shared__ double sh[33];
  double acc = 0;
  HYENA_GRID_LOOP(i, n) acc += double(x[i]) * double(x[i]);
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

}  // namespace cuda_detail

struct cuda_elementwise_ops {
  template <class T>
  static void fill(cuda_context& ctx, index_t n, T value, T* y) {
    if (n <= 0) return;
    cuda_detail::fill_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(n, value,
                                                                                                             y);
    HYENA_CUDA_CHECK_LAUNCH("fill_kernel");
  }
  template <class T>
  static void copy(cuda_context& ctx, index_t n, const T* x, T* y) {
    if (n <= 0) return;
    cuda_detail::copy_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(n, x, y);
    HYENA_CUDA_CHECK_LAUNCH("copy_kernel");
  }
  template <class T>
  static void add(cuda_context& ctx, index_t n, const T* a, const T* b, T* y) {
    if (n <= 0) return;
    cuda_detail::add_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(n, a, b, y);
    HYENA_CUDA_CHECK_LAUNCH("add_kernel");
  }
  template <class T>
  static void axpy(cuda_context& ctx, index_t n, T alpha, const T* x, T* y) {
    if (n <= 0) return;
    cuda_detail::axpy_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(n, alpha,
                                                                                                             x, y);
    HYENA_CUDA_CHECK_LAUNCH("axpy_kernel");
  }
  template <class T>
  static void scale(cuda_context& ctx, index_t n, T alpha, T* y) {
    if (n <= 0) return;
    cuda_detail::scale_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(n, alpha,
                                                                                                              y);
    HYENA_CUDA_CHECK_LAUNCH("scale_kernel");
  }
  template <class T>
  static void axpby(cuda_context& ctx, index_t n, T alpha, const T* x, T beta, T* y) {
    if (n <= 0) return;
    cuda_detail::axpby_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
        n, alpha, x, beta, y);
    HYENA_CUDA_CHECK_LAUNCH("axpby_kernel");
  }
  template <class T>
  static void mul(cuda_context& ctx, index_t n, const T* a, const T* b, T* y) {
    if (n <= 0) return;
    cuda_detail::mul_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(n, a, b, y);
    HYENA_CUDA_CHECK_LAUNCH("mul_kernel");
  }
  template <class T>
  static void add_bias(cuda_context& ctx, index_t rows, index_t cols, const T* bias, T* y) {
    if (rows <= 0 || cols <= 0) return;
    const unsigned blocks = cuda_detail::grid_for(ctx, rows * cols);
    cuda_detail::add_bias_kernel<<<blocks, cuda_detail::block_threads, 0, ctx.stream()>>>(rows, cols, bias, y);
    HYENA_CUDA_CHECK_LAUNCH("add_bias_kernel");
  }
  // dbias[c] += sum_r dy[r, c], accumulated in double.
  template <class T>
  static void bias_grad(cuda_context& ctx, index_t rows, index_t cols, const T* dy, T* dbias) {
    if (rows <= 0 || cols <= 0) return;
    cuda_detail::column_reduce_add(ctx, rows, cols, cuda_detail::column_of<T>{dy, cols}, dbias);
  }
  template <class T>
  static void gelu_forward(cuda_context& ctx, index_t n, const T* x, T* y) {
    if (n <= 0) return;
    cuda_detail::gelu_forward_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
        n, x, y);
    HYENA_CUDA_CHECK_LAUNCH("gelu_forward_kernel");
  }
  template <class T>
  static void gelu_backward(cuda_context& ctx, index_t n, const T* x, const T* dy, T* dx) {
    if (n <= 0) return;
    cuda_detail::gelu_backward_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
        n, x, dy, dx);
    HYENA_CUDA_CHECK_LAUNCH("gelu_backward_kernel");
  }
  template <class T>
  static void swiglu_forward(cuda_context& ctx, index_t rows, index_t width, const T* gate_up, T* y) {
    if (rows <= 0 || width <= 0) return;
    cuda_detail::swiglu_forward_kernel<<<cuda_detail::grid_for(ctx, rows * width), cuda_detail::block_threads, 0,
                                         ctx.stream()>>>(rows, width, gate_up, y);
    HYENA_CUDA_CHECK_LAUNCH("swiglu_forward_kernel");
  }
  template <class T>
  static void swiglu_backward(cuda_context& ctx, index_t rows, index_t width, const T* gate_up, const T* dy,
                              T* dgate_up) {
    if (rows <= 0 || width <= 0) return;
    cuda_detail::swiglu_backward_kernel<<<cuda_detail::grid_for(ctx, rows * width), cuda_detail::block_threads, 0,
                                          ctx.stream()>>>(rows, width, gate_up, dy, dgate_up);
    HYENA_CUDA_CHECK_LAUNCH("swiglu_backward_kernel");
  }
  // Accumulated in double; waits for the stream to read the result back.
  template <class T>
  static double sum_squares(cuda_context& ctx, index_t n, const T* x) {
    if (n <= 0) return 0.0;
    unsigned blocks = cuda_detail::grid_for(ctx, n);
    cuda_detail::carver cv;
    std::size_t at_partial = cv.take(sizeof(double) * blocks), at_slot = cv.take(sizeof(double));
    char* ws = static_cast<char*>(ctx.workspace(cv.used));
    double* partial = reinterpret_cast<double*>(ws + at_partial);
    cuda_detail::sum_squares_kernel<<<blocks, cuda_detail::block_threads, 0, ctx.stream()>>>(n, x, partial);
    HYENA_CUDA_CHECK_LAUNCH("sum_squares_kernel");
    return cuda_detail::sum_to_host(ctx, blocks, partial, reinterpret_cast<double*>(ws + at_slot));
  }
};

}  // namespace hyena::backend
