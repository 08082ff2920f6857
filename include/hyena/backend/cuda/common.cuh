// cuda/common.cuh: what every cuda op group shares: grid sizing, warp/block reductions in
// double (the accuracy cpu_ref's double accumulators give), a column reduction for parameter
// gradients, and a deterministic device sum read back to the host.
#pragma once
#include <algorithm>
#include <cstdint>

#include "context.hpp"

// for (index_t i ...) over [0, n) as a grid-stride loop.
#define HYENA_GRID_LOOP(i, n) \
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += index_t(gridDim.x) * blockDim.x)

namespace hyena::backend::cuda_detail {

inline constexpr int block_threads = 256;

// Blocks for a grid-stride loop over n items: enough to fill the GPU, never more than needed.
inline unsigned grid_for(const cuda_context& ctx, index_t n, int threads = block_threads) {
  index_t want = (n + threads - 1) / threads;
  index_t cap = index_t(ctx.sm_count()) * 32;
  return unsigned(std::max<index_t>(1, std::min(want, cap)));
}

// Byte offsets into the context workspace, each 256-aligned.
struct carver {
  std::size_t used = 0;
  std::size_t take(std::size_t bytes) {
    std::size_t at = used;
    used += (bytes + 255) / 256 * 256;
    return at;
  }
};

template <class T>
__device__ inline T warp_sum(T v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}
// The warp's sum in every lane (butterfly exchange).
template <class T>
__device__ inline T warp_all_sum(T v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
template <class T>
__device__ inline T warp_max(T v) {
  for (int off = 16; off > 0; off >>= 1) v = max(v, __shfl_down_sync(0xffffffffu, v, off));
  return v;
}

// Sum over the block, returned to every thread. `shared` holds >= 33 values; blockDim.x is a
// multiple of 32. Starts with a barrier so the same shared array can be reused back to back.
template <class T>
__device__ inline T block_sum(T v, T* shared) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? shared[lane] : T(0);
    w = warp_sum(w);
    if (lane == 0) shared[32] = w;
  }
  __syncthreads();
  return shared[32];
}
template <class T>
__device__ inline T block_max(T v, T* shared, T lowest) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? shared[lane] : lowest;
    w = warp_max(w);
    if (lane == 0) shared[32] = w;
  }
  __syncthreads();
  return shared[32];
}

// f(r, c) = m[r, c] for a row-major matrix with `cols` columns.
template <class T>
struct column_of {
  const T* m;
  index_t cols;
  __device__ double operator()(index_t r, index_t c) const { return double(m[r * cols + c]); }
};

// Column sums of f(r, c) over r < rows, in double. Block (32, 8) covers 32 columns; grid.y
// splits the rows; each split writes its partial to partial[split * cols + c].
template <class F>
__global__ void col_partial_kernel(index_t rows, index_t cols, index_t rows_per_split, F f, double* partial) {
  __shared__ double tile[8][33];
  index_t c = index_t(blockIdx.x) * 32 + threadIdx.x;
  index_t r0 = index_t(blockIdx.y) * rows_per_split;
  index_t r1 = min(rows, r0 + rows_per_split);
  double acc = 0;
  if (c < cols)
    for (index_t r = r0 + threadIdx.y; r < r1; r += 8) acc += f(r, c);
  tile[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    double s = 0;
    for (int i = 0; i < 8; ++i) s += tile[i][threadIdx.x];
    partial[index_t(blockIdx.y) * cols + c] = s;
  }
}

// out[c] += T(sum of the splits), splits summed in order (deterministic).
template <class T>
__global__ void col_finish_kernel(index_t cols, int splits, const double* partial, T* out, index_t out_stride) {
  for (index_t c = index_t(blockIdx.x) * blockDim.x + threadIdx.x; c < cols; c += index_t(gridDim.x) * blockDim.x) {
    double s = 0;
    for (int i = 0; i < splits; ++i) s += partial[index_t(i) * cols + c];
    out[c * out_stride] += T(s);
  }
}

// out[c * out_stride] += sum_r f(r, c). Uses (and may regrow) the context workspace, so a
// caller must not hold workspace pointers across it.
template <class T, class F>
inline void column_reduce_add(cuda_context& ctx, index_t rows, index_t cols, F f, T* out, index_t out_stride = 1) {
  if (cols <= 0) return;
  index_t col_blocks = (cols + 31) / 32;
  // Enough row splits that the GPU has ~4 blocks per SM, each split at least 64 rows.
  index_t splits =
      std::max<index_t>(1, std::min<index_t>((rows + 63) / 64, (4 * ctx.sm_count() + col_blocks - 1) / col_blocks));
  splits = std::min<index_t>(splits, 65535);
  index_t per = std::max<index_t>(1, (rows + splits - 1) / splits);
  double* partial = static_cast<double*>(ctx.workspace(sizeof(double) * std::size_t(splits * cols)));
  dim3 grid{unsigned(col_blocks), unsigned(splits)}, block{32, 8};
  col_partial_kernel<<<grid, block, 0, ctx.stream()>>>(rows, cols, per, f, partial);
  HYENA_CUDA_CHECK_LAUNCH("col_partial_kernel");
  col_finish_kernel<T>
      <<<grid_for(ctx, cols), block_threads, 0, ctx.stream()>>>(cols, int(splits), partial, out, out_stride);
  HYENA_CUDA_CHECK_LAUNCH("col_finish_kernel");
}

// One block sums values[0..n) (doubles) into *out, in a fixed order.
template <int = 0>  // a template, so the header can be included by several TUs
__global__ void __launch_bounds__(1024) sum_doubles_kernel(index_t n, const double* values, double* out) {
  __shared__ double sh[33];
  double acc = 0;
  for (index_t i = threadIdx.x; i < n; i += blockDim.x) acc += values[i];
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) *out = acc;
}

// Sums n device doubles and returns the result on the host (waits for the stream).
// `values` and `slot` (one double) must be distinct device buffers.
inline double sum_to_host(cuda_context& ctx, index_t n, const double* values, double* slot) {
  if (n <= 0) return 0.0;
  sum_doubles_kernel<<<1, 1024, 0, ctx.stream()>>>(n, values, slot);
  HYENA_CUDA_CHECK_LAUNCH("sum_doubles_kernel");
  double* host = static_cast<double*>(ctx.host_scratch(sizeof(double)));
  HYENA_CUDA_CHECK(cudaMemcpyAsync(host, slot, sizeof(double), cudaMemcpyDeviceToHost, ctx.stream()));
  ctx.synchronize();
  return *host;
}

}  // namespace hyena::backend::cuda_detail
