// cuda/attention.cuh: rotary position embedding and the causal softmax, mirroring
// cpu_ref/attention.hpp (GPT-NeoX "rotate_half" pairing; angles in double).
#pragma once
#include <cmath>

#include "common.cuh"

namespace hyena::backend {

namespace cuda_detail {

// One thread per (batch, position, head, pair); the pair (i, i + rot/2) turns by sign * angle.
template <class T>
__global__ void rotary_kernel(index_t batch, index_t seq, index_t heads, index_t head_dim, index_t row_stride,
                              index_t rot_dims, double base, double sign, T* x) {
  index_t half = rot_dims / 2;
  HYENA_GRID_LOOP(idx, batch * seq * heads * half) {
    index_t i = idx % half;
    index_t h = (idx / half) % heads;
    index_t bs = idx / (half * heads);  // b * seq + s
    index_t s = bs % seq;
    T* v = x + bs * row_stride + h * head_dim;
    double a = sign * double(s) * pow(base, -2.0 * double(i) / double(rot_dims));
    double c = cos(a), sn = sin(a);
    double x1 = v[i], x2 = v[i + half];
    v[i] = T(x1 * c - x2 * sn);
    v[i + half] = T(x2 * c + x1 * sn);
  }
}

// One block per row. probs may alias scores: every pass gives element j to the same thread,
// and the max is complete (barrier) before anything is written.
template <class T>
__global__ void __launch_bounds__(1024) causal_softmax_forward_kernel(index_t seq, T scale, const T* scores, T* probs) {
  __shared__ double shd[33];
  __shared__ T sht[33];
  index_t r = blockIdx.x, i = r % seq;
  const T* s = scores + r * seq;
  T* p = probs + r * seq;
  T mx = T(-HUGE_VAL);
  for (index_t j = threadIdx.x; j <= i; j += blockDim.x) mx = max(mx, scale * s[j]);
  mx = block_max(mx, sht, T(-HUGE_VAL));
  double sum = 0;
  for (index_t j = threadIdx.x; j <= i; j += blockDim.x) {
    T e = exp(scale * s[j] - mx);
    p[j] = e;
    sum += double(e);
  }
  T inv = T(1.0 / block_sum(sum, shd));
  for (index_t j = threadIdx.x; j < seq; j += blockDim.x) p[j] = j <= i ? p[j] * inv : T(0);
}

// dscores may alias dprobs: the dot product is complete (barrier) before anything is written.
template <class T>
__global__ void __launch_bounds__(1024)
    causal_softmax_backward_kernel(index_t seq, T scale, const T* probs, const T* dprobs, T* dscores) {
  __shared__ double sh[33];
  index_t r = blockIdx.x, i = r % seq;
  const T* p = probs + r * seq;
  const T* dp = dprobs + r * seq;
  T* ds = dscores + r * seq;
  double dot = 0;
  for (index_t j = threadIdx.x; j <= i; j += blockDim.x) dot += double(p[j]) * double(dp[j]);
  dot = block_sum(dot, sh);
  for (index_t j = threadIdx.x; j < seq; j += blockDim.x)
    ds[j] = j <= i ? T(double(scale * p[j]) * (double(dp[j]) - dot)) : T(0);
}

inline void check_rotary(index_t heads, index_t head_dim, index_t row_stride, index_t rot_dims) {
  HYENA_CHECK(rot_dims >= 0 && rot_dims % 2 == 0 && rot_dims <= head_dim, "rotary: rot_dims ", rot_dims,
              " must be even and at most head_dim ", head_dim);
  HYENA_CHECK(row_stride >= heads * head_dim, "rotary: row_stride ", row_stride, " < heads * head_dim ",
              heads * head_dim);
}

template <class T>
void rotary_launch(cuda_context& ctx, index_t batch, index_t seq, index_t heads, index_t head_dim, index_t row_stride,
                   index_t rot_dims, double base, double sign, T* x) {
  check_rotary(heads, head_dim, row_stride, rot_dims);
  index_t n = batch * seq * heads * (rot_dims / 2);
  if (n <= 0) return;
  rotary_kernel<<<grid_for(ctx, n), block_threads, 0, ctx.stream()>>>(batch, seq, heads, head_dim, row_stride, rot_dims,
                                                                      base, sign, x);
  HYENA_CUDA_CHECK_LAUNCH("rotary_kernel");
}

inline int softmax_threads(index_t seq) {
  index_t t = (seq + 31) / 32 * 32;
  return int(t < 32 ? 32 : (t > 1024 ? 1024 : t));
}

}  // namespace cuda_detail

struct cuda_attention_ops {
  template <class T>
  static void rotary_forward(cuda_context& ctx, index_t batch, index_t seq, index_t heads, index_t head_dim,
                             index_t row_stride, index_t rot_dims, double base, T* x) {
    cuda_detail::rotary_launch(ctx, batch, seq, heads, head_dim, row_stride, rot_dims, base, 1.0, x);
  }
  template <class T>
  static void rotary_backward(cuda_context& ctx, index_t batch, index_t seq, index_t heads, index_t head_dim,
                              index_t row_stride, index_t rot_dims, double base, T* dx) {
    cuda_detail::rotary_launch(ctx, batch, seq, heads, head_dim, row_stride, rot_dims, base, -1.0, dx);
  }

  template <class T>
  static void causal_softmax_forward(cuda_context& ctx, index_t batches, index_t seq, T scale, const T* scores,
                                     T* probs) {
    index_t rows = batches * seq;
    if (rows <= 0) return;
    HYENA_CHECK(rows <= index_t(0x7fffffff), "causal_softmax: ", rows, " rows exceed the grid limit");
    cuda_detail::causal_softmax_forward_kernel<<<unsigned(rows), cuda_detail::softmax_threads(seq), 0, ctx.stream()>>>(
        seq, scale, scores, probs);
    HYENA_CUDA_CHECK_LAUNCH("causal_softmax_forward_kernel");
  }
  template <class T>
  static void causal_softmax_backward(cuda_context& ctx, index_t batches, index_t seq, T scale, const T* probs,
                                      const T* dprobs, T* dscores) {
    index_t rows = batches * seq;
    if (rows <= 0) return;
    HYENA_CHECK(rows <= index_t(0x7fffffff), "causal_softmax: ", rows, " rows exceed the grid limit");
    cuda_detail::causal_softmax_backward_kernel<<<unsigned(rows), cuda_detail::softmax_threads(seq), 0, ctx.stream()>>>(
        seq, scale, probs, dprobs, dscores);
    HYENA_CUDA_CHECK_LAUNCH("causal_softmax_backward_kernel");
  }
};

}  // namespace hyena::backend
