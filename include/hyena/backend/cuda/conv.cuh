// cuda/conv.cuh: causal depthwise convolutions, mirroring cpu_ref/conv.hpp.
//
// Short conv: direct kernels (K is a handful of taps), double accumulators.
// Long causal conv: FFT. Every (batch, channel) signal is transposed out of the (B, L, C)
// layout (tiled in shared memory, coalesced both ways) into a zero-padded row of N >= 2L (a power of two, so the circular product has no
// wrap-around), all rows go through one batched cuFFT R2C, are multiplied by the filter
// spectrum (computed once per call, batched over channels), and come back by C2R.
// Backward uses the same transforms: dx = IFFT(conj(H) DY), dh = IFFT(sum_b conj(X_b) DY_b).
#pragma once
#include <climits>
#include <type_traits>

#include "../cpu_ref/conv.hpp"  // the shared size checks
#include "common.cuh"

namespace hyena::backend {

namespace cuda_detail {

// --- short conv ---------------------------------------------------------------------------
template <class T>
__global__ void short_conv_forward_kernel(index_t batch, index_t seq, index_t channels, index_t kernel, const T* x,
                                          const T* weight, const T* bias, T* y) {
  HYENA_GRID_LOOP(i, batch * seq * channels) {
    index_t c = i % channels, bt = i / channels, t = bt % seq;
    double acc = bias ? double(bias[c]) : 0.0;
    for (index_t k = 0; k < kernel; ++k) {
      index_t s = t - (kernel - 1) + k;
      if (s >= 0) acc += double(weight[c * kernel + k]) * double(x[(bt - (kernel - 1) + k) * channels + c]);
    }
    y[i] = T(acc);
  }
}

template <class T>
__global__ void short_conv_dx_kernel(index_t batch, index_t seq, index_t channels, index_t kernel, const T* weight,
                                     const T* dy, T* dx) {
  HYENA_GRID_LOOP(i, batch * seq * channels) {
    index_t c = i % channels, bs = i / channels, s = bs % seq;
    double acc = 0;
    for (index_t k = 0; k < kernel; ++k) {
      index_t t = s + (kernel - 1) - k;  // x[s] feeds y[t] through tap k
      if (t < seq) acc += double(weight[c * kernel + k]) * double(dy[(bs + (kernel - 1) - k) * channels + c]);
    }
    dx[i] = T(acc);
  }
}

// dy[b,t,c] * x[b, t-(K-1)+k, c] over rows r = b*seq + t, for one tap k.
template <class T>
struct short_conv_tap_term {
  const T *x, *dy;
  index_t seq, channels, shift;  // shift = K-1-k
  __device__ double operator()(index_t r, index_t c) const {
    index_t t = r % seq;
    if (t < shift) return 0.0;
    return double(dy[r * channels + c]) * double(x[(r - shift) * channels + c]);
  }
};

// --- FFT plumbing -------------------------------------------------------------------------
template <class T>
struct fft_traits;
template <>
struct fft_traits<float> {
  using complex = cufftComplex;
  static constexpr cufftType r2c = CUFFT_R2C, c2r = CUFFT_C2R;
  static void forward(cufftHandle p, float* in, complex* out) { HYENA_CUFFT_CHECK(cufftExecR2C(p, in, out)); }
  static void inverse(cufftHandle p, complex* in, float* out) { HYENA_CUFFT_CHECK(cufftExecC2R(p, in, out)); }
};
template <>
struct fft_traits<double> {
  using complex = cufftDoubleComplex;
  static constexpr cufftType r2c = CUFFT_D2Z, c2r = CUFFT_Z2D;
  static void forward(cufftHandle p, double* in, complex* out) { HYENA_CUFFT_CHECK(cufftExecD2Z(p, in, out)); }
  static void inverse(cufftHandle p, complex* in, double* out) { HYENA_CUFFT_CHECK(cufftExecZ2D(p, in, out)); }
};

// The (B, L, C) <-> (B*C rows of n) transposes go through a 32 x 33 shared-memory tile (the extra
// column keeps the column reads free of bank conflicts), so global reads and writes are both
// coalesced: a thread block reads 32 consecutive channels of 8 positions at a time and writes 32
// consecutive positions of 8 channels. A plain element-wise loop reads or writes with stride C.
inline constexpr int tile = 32, tile_rows = 8;

// Blocks: x over position tiles (of n, or of L), y over channel tiles, z over batches.
inline dim3 transpose_grid(index_t positions, index_t channels, index_t batch) {
  HYENA_CHECK((channels + tile - 1) / tile <= 65535, "causal_conv: ", channels, " channels exceed the grid's y limit");
  const index_t z = batch < 65535 ? batch : 65535;
  return dim3(unsigned((positions + tile - 1) / tile), unsigned((channels + tile - 1) / tile), unsigned(z));
}

// (B, L, C) -> rows (b*C + c) of length n, zero past L.
template <class T>
__global__ void fft_pack_kernel(index_t batch, index_t seq, index_t channels, index_t n, const T* x, T* rows) {
  __shared__ T t_tile[tile][tile + 1];  // [position][channel]
  const index_t t0 = index_t(blockIdx.x) * tile, c0 = index_t(blockIdx.y) * tile;
  for (index_t b = blockIdx.z; b < batch; b += gridDim.z) {
    for (int k = threadIdx.y; k < tile; k += tile_rows) {
      const index_t t = t0 + k, c = c0 + threadIdx.x;
      t_tile[k][threadIdx.x] = (t < seq && c < channels) ? x[(b * seq + t) * channels + c] : T(0);
    }
    __syncthreads();
    for (int k = threadIdx.y; k < tile; k += tile_rows) {
      const index_t c = c0 + k, t = t0 + threadIdx.x;
      if (c < channels && t < n) rows[(b * channels + c) * n + t] = t_tile[threadIdx.x][k];
    }
    __syncthreads();  // the tile is refilled for the next batch
  }
}
// filter (C, h_stride) -> rows of length n, zero past L.
template <class T>
__global__ void fft_pack_filter_kernel(index_t seq, index_t channels, index_t n, const T* h, index_t h_stride,
                                       T* rows) {
  HYENA_GRID_LOOP(i, channels * n) {
    index_t t = i % n, c = i / n;
    rows[i] = t < seq ? h[c * h_stride + t] : T(0);
  }
}
// y[b,t,c] = rows[b*C + c, t] * scale (cuFFT's inverse is unnormalised), through the same tile.
template <class T>
__global__ void fft_unpack_kernel(index_t batch, index_t seq, index_t channels, index_t n, const T* rows, T scale,
                                  T* y) {
  __shared__ T c_tile[tile][tile + 1];  // [channel][position]
  const index_t t0 = index_t(blockIdx.x) * tile, c0 = index_t(blockIdx.y) * tile;
  for (index_t b = blockIdx.z; b < batch; b += gridDim.z) {
    for (int k = threadIdx.y; k < tile; k += tile_rows) {
      const index_t c = c0 + k, t = t0 + threadIdx.x;
      if (c < channels && t < seq) c_tile[k][threadIdx.x] = rows[(b * channels + c) * n + t];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < tile; k += tile_rows) {
      const index_t t = t0 + k, c = c0 + threadIdx.x;
      if (t < seq && c < channels) y[(b * seq + t) * channels + c] = c_tile[threadIdx.x][k] * scale;
    }
    __syncthreads();
  }
}
// dh[c, s] += rows[c, s] * scale
template <class T>
__global__ void fft_unpack_filter_add_kernel(index_t seq, index_t channels, index_t n, const T* rows, T scale, T* dh,
                                             index_t h_stride) {
  HYENA_GRID_LOOP(i, channels * seq) {
    index_t s = i % seq, c = i / seq;
    dh[c * h_stride + s] += rows[c * n + s] * scale;
  }
}
// X[row, f] = (conj?)(H[row % C, f]) * X[row, f] -- in place on X, or into out.
template <class C>
__global__ void spectrum_mul_kernel(index_t rows, index_t channels, index_t freqs, const C* h, bool conj_h, const C* x,
                                    C* out) {
  HYENA_GRID_LOOP(i, rows * freqs) {
    index_t f = i % freqs, c = (i / freqs) % channels;
    C a = h[c * freqs + f], b = x[i], r;
    if (conj_h) a.y = -a.y;
    r.x = a.x * b.x - a.y * b.y;
    r.y = a.x * b.y + a.y * b.x;
    out[i] = r;
  }
}
// DH[c, f] = sum_b conj(X[b*C + c, f]) DY[b*C + c, f], batches in order.
template <class C>
__global__ void spectrum_corr_kernel(index_t batch, index_t channels, index_t freqs, const C* x, const C* dy, C* out) {
  HYENA_GRID_LOOP(i, channels * freqs) {
    C acc;
    acc.x = 0;
    acc.y = 0;
    for (index_t b = 0; b < batch; ++b) {
      C a = x[b * channels * freqs + i], d = dy[b * channels * freqs + i];
      acc.x += a.x * d.x + a.y * d.y;
      acc.y += a.x * d.y - a.y * d.x;
    }
    out[i] = acc;
  }
}

inline index_t fft_size(index_t seq) {
  index_t n = 1;
  while (n < 2 * seq) n *= 2;
  return n;
}

inline int fft_int(index_t v, const char* what) {
  HYENA_CHECK(v > 0 && v <= INT_MAX, "causal_conv: ", what, " = ", v, " does not fit cuFFT's int");
  return int(v);
}

}  // namespace cuda_detail

struct cuda_conv_ops {
  template <class T>
  static void short_conv_forward(cuda_context& ctx, index_t batch, index_t seq, index_t channels, index_t kernel,
                                 const T* x, const T* weight, const T* bias, T* y) {
    ref_conv_ops::check_short_conv(batch, seq, channels, kernel);
    index_t n = batch * seq * channels;
    if (n == 0) return;
    const unsigned blocks = cuda_detail::grid_for(ctx, n);
    cuda_detail::short_conv_forward_kernel<<<blocks, cuda_detail::block_threads, 0, ctx.stream()>>>(
        batch, seq, channels, kernel, x, weight, bias, y);
    HYENA_CUDA_CHECK_LAUNCH("short_conv_forward_kernel");
  }

  template <class T>
  static void short_conv_backward(cuda_context& ctx, index_t batch, index_t seq, index_t channels, index_t kernel,
                                  const T* x, const T* weight, const T* dy, T* dx, T* dweight, T* dbias) {
    ref_conv_ops::check_short_conv(batch, seq, channels, kernel);
    index_t n = batch * seq * channels;
    if (n == 0) return;
    if (dx) {
      cuda_detail::short_conv_dx_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
          batch, seq, channels, kernel, weight, dy, dx);
      HYENA_CUDA_CHECK_LAUNCH("short_conv_dx_kernel");
    }
    if (dweight)
      for (index_t k = 0; k < kernel; ++k)
        cuda_detail::column_reduce_add(ctx, batch * seq, channels,
                                       cuda_detail::short_conv_tap_term<T>{x, dy, seq, channels, kernel - 1 - k},
                                       dweight + k, kernel);
    if (dbias)
      cuda_detail::column_reduce_add(ctx, batch * seq, channels, cuda_detail::column_of<T>{dy, channels}, dbias);
  }

  template <class T>
  static void causal_conv_forward(cuda_context& ctx, index_t batch, index_t seq, index_t channels, const T* x,
                                  const T* h, index_t h_stride, T* y) {
    ref_conv_ops::check_causal_conv(batch, seq, channels, h_stride);
    if (batch * seq * channels == 0) return;
    using tr = cuda_detail::fft_traits<T>;
    using C = typename tr::complex;
    index_t n = cuda_detail::fft_size(seq), f = n / 2 + 1, rows = batch * channels;
    int N = cuda_detail::fft_int(n, "fft size"), R = cuda_detail::fft_int(rows, "batch * channels");
    int CH = cuda_detail::fft_int(channels, "channels");
    cuda_detail::carver cv;
    std::size_t at_xr = cv.take(sizeof(T) * rows * n), at_hr = cv.take(sizeof(T) * channels * n);
    std::size_t at_x = cv.take(sizeof(C) * rows * f), at_h = cv.take(sizeof(C) * channels * f);
    char* ws = static_cast<char*>(ctx.workspace(cv.used));
    T* xr = reinterpret_cast<T*>(ws + at_xr);
    T* hr = reinterpret_cast<T*>(ws + at_hr);
    C* xs = reinterpret_cast<C*>(ws + at_x);
    C* hs = reinterpret_cast<C*>(ws + at_h);
    auto grid = [&](index_t m) { return cuda_detail::grid_for(ctx, m); };
    constexpr int bt = cuda_detail::block_threads;
    const dim3 tile_block(cuda_detail::tile, cuda_detail::tile_rows);
    const dim3 pack_grid = cuda_detail::transpose_grid(n, channels, batch);
    const dim3 unpack_grid = cuda_detail::transpose_grid(seq, channels, batch);

    cuda_detail::fft_pack_kernel<<<pack_grid, tile_block, 0, ctx.stream()>>>(batch, seq, channels, n, x, xr);
    HYENA_CUDA_CHECK_LAUNCH("fft_pack_kernel");
    cuda_detail::fft_pack_filter_kernel<<<grid(channels * n), bt, 0, ctx.stream()>>>(seq, channels, n, h, h_stride, hr);
    HYENA_CUDA_CHECK_LAUNCH("fft_pack_filter_kernel");
    tr::forward(ctx.fft_plan(N, R, tr::r2c), xr, xs);
    tr::forward(ctx.fft_plan(N, CH, tr::r2c), hr, hs);
    cuda_detail::spectrum_mul_kernel<<<grid(rows * f), bt, 0, ctx.stream()>>>(rows, channels, f, hs, false, xs, xs);
    HYENA_CUDA_CHECK_LAUNCH("spectrum_mul_kernel");
    tr::inverse(ctx.fft_plan(N, R, tr::c2r), xs, xr);
    cuda_detail::fft_unpack_kernel<<<unpack_grid, tile_block, 0, ctx.stream()>>>(batch, seq, channels, n, xr,
                                                                                 T(1.0 / double(n)), y);
    HYENA_CUDA_CHECK_LAUNCH("fft_unpack_kernel");
  }

  // dx assigned (skipped when null), dh accumulated (skipped when null), as cpu_ref.
  template <class T>
  static void causal_conv_backward(cuda_context& ctx, index_t batch, index_t seq, index_t channels, const T* x,
                                   const T* h, index_t h_stride, const T* dy, T* dx, T* dh) {
    ref_conv_ops::check_causal_conv(batch, seq, channels, h_stride);
    if (batch * seq * channels == 0 || (!dx && !dh)) return;
    using tr = cuda_detail::fft_traits<T>;
    using C = typename tr::complex;
    index_t n = cuda_detail::fft_size(seq), f = n / 2 + 1, rows = batch * channels;
    int N = cuda_detail::fft_int(n, "fft size"), R = cuda_detail::fft_int(rows, "batch * channels");
    int CH = cuda_detail::fft_int(channels, "channels");
    cuda_detail::carver cv;
    std::size_t at_xr = cv.take(sizeof(T) * rows * n), at_hr = cv.take(sizeof(T) * channels * n);
    std::size_t at_x = cv.take(sizeof(C) * rows * f), at_dy = cv.take(sizeof(C) * rows * f);
    std::size_t at_h = cv.take(sizeof(C) * channels * f);
    char* ws = static_cast<char*>(ctx.workspace(cv.used));
    T* xr = reinterpret_cast<T*>(ws + at_xr);
    T* hr = reinterpret_cast<T*>(ws + at_hr);
    C* xs = reinterpret_cast<C*>(ws + at_x);
    C* dys = reinterpret_cast<C*>(ws + at_dy);
    C* hs = reinterpret_cast<C*>(ws + at_h);
    auto grid = [&](index_t m) { return cuda_detail::grid_for(ctx, m); };
    constexpr int bt = cuda_detail::block_threads;
    const dim3 tile_block(cuda_detail::tile, cuda_detail::tile_rows);
    const dim3 pack_grid = cuda_detail::transpose_grid(n, channels, batch);
    const dim3 unpack_grid = cuda_detail::transpose_grid(seq, channels, batch);
    const T inv_n = T(1.0 / double(n));

    cuda_detail::fft_pack_kernel<<<pack_grid, tile_block, 0, ctx.stream()>>>(batch, seq, channels, n, dy, xr);
    HYENA_CUDA_CHECK_LAUNCH("fft_pack_kernel");
    tr::forward(ctx.fft_plan(N, R, tr::r2c), xr, dys);

    if (dh) {
      // Correlate x with dy per channel, summed over the batch; hs holds the spectrum.
      cuda_detail::fft_pack_kernel<<<pack_grid, tile_block, 0, ctx.stream()>>>(batch, seq, channels, n, x, xr);
      HYENA_CUDA_CHECK_LAUNCH("fft_pack_kernel");
      tr::forward(ctx.fft_plan(N, R, tr::r2c), xr, xs);
      cuda_detail::spectrum_corr_kernel<<<grid(channels * f), bt, 0, ctx.stream()>>>(batch, channels, f, xs, dys, hs);
      HYENA_CUDA_CHECK_LAUNCH("spectrum_corr_kernel");
      tr::inverse(ctx.fft_plan(N, CH, tr::c2r), hs, hr);  // C2R overwrites hs; it is not needed again
      cuda_detail::fft_unpack_filter_add_kernel<<<grid(channels * seq), bt, 0, ctx.stream()>>>(seq, channels, n, hr,
                                                                                               inv_n, dh, h_stride);
      HYENA_CUDA_CHECK_LAUNCH("fft_unpack_filter_add_kernel");
    }
    if (dx) {
      cuda_detail::fft_pack_filter_kernel<<<grid(channels * n), bt, 0, ctx.stream()>>>(seq, channels, n, h, h_stride,
                                                                                       hr);
      HYENA_CUDA_CHECK_LAUNCH("fft_pack_filter_kernel");
      tr::forward(ctx.fft_plan(N, CH, tr::r2c), hr, hs);
      cuda_detail::spectrum_mul_kernel<<<grid(rows * f), bt, 0, ctx.stream()>>>(rows, channels, f, hs, true, dys, xs);
      HYENA_CUDA_CHECK_LAUNCH("spectrum_mul_kernel");
      tr::inverse(ctx.fft_plan(N, R, tr::c2r), xs, xr);
      cuda_detail::fft_unpack_kernel<<<unpack_grid, tile_block, 0, ctx.stream()>>>(batch, seq, channels, n, xr, inv_n,
                                                                                   dx);
      HYENA_CUDA_CHECK_LAUNCH("fft_unpack_kernel");
    }
  }
};

}  // namespace hyena::backend
