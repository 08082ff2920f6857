// cuda/decode.cuh: one token at a time (cpu_ref/decode.hpp): rotary at per-row positions,
// attention over a KV cache (one warp per (row, head), the online softmax of
// fused_attention.cuh), the short and long convolutions' steps and the modal recurrence, one
// thread per output with double accumulators. Positions (`pos`) are in device memory.
#pragma once
#include <cmath>

#include "common.cuh"
#include "fused_attention.cuh"  // max_lane_dims, attention_warps

namespace hyena::backend {

namespace cuda_detail {

template <class T>
__global__ void rotary_at_kernel(index_t rows, index_t heads, index_t head_dim, index_t row_stride, index_t rot_dims,
                                 double base, const index_t* pos, T* x) {
  const index_t half = rot_dims / 2;
  HYENA_GRID_LOOP(idx, rows * heads * half) {
    const index_t i = idx % half, h = (idx / half) % heads, r = idx / (half * heads);
    T* v = x + r * row_stride + h * head_dim;
    const double a = double(pos[r]) * pow(base, -2.0 * double(i) / double(rot_dims));
    const double c = cos(a), s = sin(a), x1 = v[i], x2 = v[i + half];
    v[i] = T(x1 * c - x2 * s);
    v[i + half] = T(x2 * c + x1 * s);
  }
}

template <class T>
__global__ void attention_decode_kernel(index_t rows, index_t heads, index_t kv_heads, index_t D, double scale,
                                        const T* q, index_t q_row, const T* k_cache, const T* v_cache, index_t max_len,
                                        const index_t* pos, T* out, index_t out_row) {
  const index_t w = index_t(blockIdx.x) * attention_warps + threadIdx.x / 32;  // (r, h)
  const int lane = threadIdx.x & 31;
  if (w >= rows * heads) return;
  const index_t h = w % heads, r = w / heads, g = h / (heads / kv_heads), kv = kv_heads * D;
  double qr[max_lane_dims], acc[max_lane_dims];
  for (int u = 0; u < max_lane_dims; ++u) {
    const index_t i = lane + 32 * u;
    qr[u] = i < D ? double(q[r * q_row + h * D + i]) : 0.0;
    acc[u] = 0;
  }
  double mx = -HUGE_VAL, z = 0;
  for (index_t t = 0; t <= pos[r]; ++t) {
    const T* k = k_cache + (r * max_len + t) * kv + g * D;
    const T* v = v_cache + (r * max_len + t) * kv + g * D;
    double d = 0;
    for (int u = 0; u < max_lane_dims; ++u) {
      const index_t i = lane + 32 * u;
      if (i < D) d += qr[u] * double(k[i]);
    }
    const double s = scale * warp_all_sum(d), m_new = max(mx, s), correction = exp(mx - m_new), e = exp(s - m_new);
    z = z * correction + e;
    for (int u = 0; u < max_lane_dims; ++u) {
      const index_t i = lane + 32 * u;
      if (i < D) acc[u] = acc[u] * correction + e * double(v[i]);
    }
    mx = m_new;
  }
  for (int u = 0; u < max_lane_dims; ++u) {
    const index_t i = lane + 32 * u;
    if (i < D) out[r * out_row + h * D + i] = T(acc[u] / z);
  }
}

template <class T>
__global__ void short_conv_step_kernel(index_t rows, index_t channels, index_t kernel, const T* ring, const T* weight,
                                       const T* bias, const index_t* pos, T* y) {
  HYENA_GRID_LOOP(idx, rows * channels) {
    const index_t c = idx % channels, r = idx / channels;
    double acc = bias[c];
    for (index_t k = 0; k < kernel; ++k) {
      const index_t t = pos[r] - (kernel - 1) + k;
      if (t >= 0) acc += double(weight[c * kernel + k]) * double(ring[(r * kernel + t % kernel) * channels + c]);
    }
    y[idx] = T(acc);
  }
}

template <class T>
__global__ void causal_conv_step_kernel(index_t rows, index_t channels, const T* hist, index_t max_len, const T* h,
                                        index_t ldh, const index_t* pos, T* y) {
  HYENA_GRID_LOOP(idx, rows * channels) {
    const index_t c = idx % channels, r = idx / channels;
    double acc = 0;
    for (index_t s = 0; s <= pos[r]; ++s) acc += double(h[c * ldh + pos[r] - s]) * double(hist[(r * max_len + s) * channels + c]);
    y[idx] = T(acc);
  }
}

template <class T>
__global__ void modal_step_kernel(index_t rows, index_t channels, index_t modes, const T* poles, const T* residues,
                                  T* state, const T* w, T* y) {
  HYENA_GRID_LOOP(idx, rows * channels) {
    const index_t c = idx % channels, r = idx / channels;
    double acc = 0;
    for (index_t k = 0; k < modes; ++k) {
      const index_t pk = (c * modes + k) * 2, sk = ((r * channels + c) * modes + k) * 2;
      const double lr = poles[pk], li = poles[pk + 1], sr = state[sk], si = state[sk + 1];
      const double nr = lr * sr - li * si + double(w[idx]), ni = lr * si + li * sr;  // lambda s + w
      state[sk] = T(nr);
      state[sk + 1] = T(ni);
      acc += double(residues[pk]) * nr - double(residues[pk + 1]) * ni;  // Re(R s)
    }
    y[idx] = T(acc);
  }
}

template <class T>
__global__ void modal_prefill_kernel(index_t rows, index_t channels, index_t modes, const T* poles, const T* hist,
                                     index_t max_len, index_t len, T* state) {
  HYENA_GRID_LOOP(idx, rows * channels * modes) {
    const index_t k = idx % modes, c = (idx / modes) % channels, r = idx / (modes * channels);
    const index_t pk = (c * modes + k) * 2;
    const double lr = poles[pk], li = poles[pk + 1];
    double sr = 0, si = 0;
    for (index_t t = 0; t < len; ++t) {
      const double nr = lr * sr - li * si + double(hist[(r * max_len + t) * channels + c]), ni = lr * si + li * sr;
      sr = nr;
      si = ni;
    }
    state[idx * 2] = T(sr);
    state[idx * 2 + 1] = T(si);
  }
}

}  // namespace cuda_detail

struct cuda_decode_ops {
  template <class T>
  static void rotary_at(cuda_context& ctx, index_t rows, index_t heads, index_t head_dim, index_t row_stride,
                        index_t rot_dims, double base, const index_t* pos, T* x) {
    cuda_detail::check_rotary(heads, head_dim, row_stride, rot_dims);
    const index_t n = rows * heads * (rot_dims / 2);
    if (n <= 0) return;
    cuda_detail::rotary_at_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
        rows, heads, head_dim, row_stride, rot_dims, base, pos, x);
    HYENA_CUDA_CHECK_LAUNCH("rotary_at_kernel");
  }

  template <class T>
  static void attention_decode(cuda_context& ctx, index_t rows, index_t heads, index_t kv_heads, index_t head_dim,
                               T scale, const T* q, index_t q_row, const T* k_cache, const T* v_cache,
                               index_t max_len, const index_t* pos, T* out, index_t out_row) {
    cuda_detail::check_fused_attention(rows, max_len, heads, kv_heads, head_dim, (heads + 2 * kv_heads) * head_dim,
                                       out_row);
    const index_t warps = rows * heads;
    if (warps <= 0) return;
    cuda_detail::attention_decode_kernel<<<cuda_detail::attention_blocks(warps), 32 * cuda_detail::attention_warps, 0,
                                           ctx.stream()>>>(rows, heads, kv_heads, head_dim, double(scale), q, q_row,
                                                           k_cache, v_cache, max_len, pos, out, out_row);
    HYENA_CUDA_CHECK_LAUNCH("attention_decode_kernel");
  }

  template <class T>
  static void short_conv_step(cuda_context& ctx, index_t rows, index_t channels, index_t kernel, const T* ring,
                              const T* weight, const T* bias, const index_t* pos, T* y) {
    const index_t n = rows * channels;
    if (n <= 0) return;
    cuda_detail::short_conv_step_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
        rows, channels, kernel, ring, weight, bias, pos, y);
    HYENA_CUDA_CHECK_LAUNCH("short_conv_step_kernel");
  }

  template <class T>
  static void causal_conv_step(cuda_context& ctx, index_t rows, index_t channels, const T* hist, index_t max_len,
                               const T* h, index_t ldh, const index_t* pos, T* y) {
    const index_t n = rows * channels;
    if (n <= 0) return;
    cuda_detail::causal_conv_step_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
        rows, channels, hist, max_len, h, ldh, pos, y);
    HYENA_CUDA_CHECK_LAUNCH("causal_conv_step_kernel");
  }

  template <class T>
  static void modal_step(cuda_context& ctx, index_t rows, index_t channels, index_t modes, const T* poles,
                         const T* residues, T* state, const T* w, T* y) {
    const index_t n = rows * channels;
    if (n <= 0) return;
    cuda_detail::modal_step_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
        rows, channels, modes, poles, residues, state, w, y);
    HYENA_CUDA_CHECK_LAUNCH("modal_step_kernel");
  }

  template <class T>
  static void modal_prefill(cuda_context& ctx, index_t rows, index_t channels, index_t modes, const T* poles,
                            const T* hist, index_t max_len, index_t len, T* state) {
    const index_t n = rows * channels * modes;
    if (n <= 0) return;
    cuda_detail::modal_prefill_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
        rows, channels, modes, poles, hist, max_len, len, state);
    HYENA_CUDA_CHECK_LAUNCH("modal_prefill_kernel");
  }
};

}  // namespace hyena::backend
