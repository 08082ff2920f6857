// cuda/alignment.cuh: the distiller's attention-to-Hyena ops (cpu_ref/alignment.hpp), one thread
// per output element with double accumulators, written to be checked against the reference
// first (they run once per distillation stage-0 batch or per stage-1 step, not per token).
#pragma once
#include <cmath>

#include "common.cuh"

namespace hyena::backend {

namespace cuda_detail {

template <class T>
__global__ void attention_probs_kernel(index_t batch, index_t seq, index_t heads, index_t kv_heads, index_t D,
                                       double scale, const T* qkv, index_t qkv_row, const T* lse, T* probs) {
  const index_t group = heads / kv_heads;
  HYENA_GRID_LOOP(idx, batch * heads * seq * seq) {
    const index_t s = idx % seq, t = (idx / seq) % seq, h = (idx / (seq * seq)) % heads, b = idx / (seq * seq * heads);
    if (s > t) {
      probs[idx] = T(0);
      continue;
    }
    const T* q = qkv + (b * seq + t) * qkv_row + h * D;
    const T* k = qkv + (b * seq + s) * qkv_row + (heads + h / group) * D;
    double d = 0;
    for (index_t i = 0; i < D; ++i) d += double(q[i]) * double(k[i]);
    probs[idx] = T(exp(scale * d - double(lse[(b * heads + h) * seq + t])));
  }
}

template <class T>
__global__ void lag_sums_kernel(index_t batch, index_t heads, index_t seq, const T* probs, double* sums) {
  HYENA_GRID_LOOP(idx, heads * seq) {
    const index_t k = idx % seq, h = idx / seq;
    double s = 0;
    for (index_t b = 0; b < batch; ++b)
      for (index_t t = k; t < seq; ++t) s += double(probs[((b * heads + h) * seq + t) * seq + t - k]);
    sums[idx] += s;
  }
}

// The pieces of hyena_attention_alignment (see cpu_ref): M[t, s] = x0[t] h'(t, s) x1[s] with
// h'(t, s) = h[t - s] + [t == s] bias, r = M - P, g = 2 grad_scale r.
template <class T>
struct alignment_args {
  index_t batch, seq, C, head_dim;
  const T *x0, *x1, *h;
  index_t ldh;
  const T *bias, *probs;
  double grad_scale;
  __device__ double X0(index_t b, index_t t, index_t c) const { return double(x0[(b * seq + t) * C + c]); }
  __device__ double X1(index_t b, index_t t, index_t c) const { return double(x1[(b * seq + t) * C + c]); }
  __device__ double H(index_t c, index_t t, index_t s) const {
    return double(h[c * ldh + t - s]) + (t == s ? double(bias[c]) : 0.0);
  }
  __device__ double residual(index_t b, index_t c, index_t t, index_t s) const {
    const index_t heads = C / head_dim;
    return X0(b, t, c) * H(c, t, s) * X1(b, s, c) - double(probs[((b * heads + c / head_dim) * seq + t) * seq + s]);
  }
};

// One thread per (b, t, c): the loss over s <= t (into partial, per block) and d_x0.
template <class T>
__global__ void alignment_rows_kernel(alignment_args<T> a, T* d_x0, double* partial) {
  __shared__ double sh[33];
  double loss = 0;
  HYENA_GRID_LOOP(idx, a.batch * a.seq * a.C) {
    const index_t c = idx % a.C, t = (idx / a.C) % a.seq, b = idx / (a.C * a.seq);
    double g0 = 0;
    for (index_t s = 0; s <= t; ++s) {
      const double r = a.residual(b, c, t, s);
      loss += r * r;
      g0 += 2.0 * a.grad_scale * r * a.H(c, t, s) * a.X1(b, s, c);
    }
    if (d_x0) d_x0[idx] = T(g0);
  }
  loss = block_sum(loss, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = loss;
}

// One thread per (b, s, c): d_x1.
template <class T>
__global__ void alignment_columns_kernel(alignment_args<T> a, T* d_x1) {
  HYENA_GRID_LOOP(idx, a.batch * a.seq * a.C) {
    const index_t c = idx % a.C, s = (idx / a.C) % a.seq, b = idx / (a.C * a.seq);
    double g1 = 0;
    for (index_t t = s; t < a.seq; ++t) g1 += 2.0 * a.grad_scale * a.residual(b, c, t, s) * a.X0(b, t, c) * a.H(c, t, s);
    d_x1[idx] = T(g1);
  }
}

// One thread per (c, k): d_h (assigned); the k == 0 thread also adds d_bias.
template <class T>
__global__ void alignment_filter_kernel(alignment_args<T> a, T* d_h, T* d_bias) {
  HYENA_GRID_LOOP(idx, a.C * a.seq) {
    const index_t k = idx % a.seq, c = idx / a.seq;
    double g = 0;
    for (index_t b = 0; b < a.batch; ++b)
      for (index_t t = k; t < a.seq; ++t)
        g += 2.0 * a.grad_scale * a.residual(b, c, t, t - k) * a.X0(b, t, c) * a.X1(b, t - k, c);
    if (d_h) d_h[c * a.ldh + k] = T(g);
    if (k == 0 && d_bias) d_bias[c] = T(double(d_bias[c]) + g);
  }
}

}  // namespace cuda_detail

struct cuda_alignment_ops {
  template <class T>
  static void causal_attention_probs(cuda_context& ctx, index_t batch, index_t seq, index_t heads, index_t kv_heads,
                                     index_t head_dim, T scale, const T* qkv, index_t qkv_row, const T* lse,
                                     T* probs) {
    HYENA_CHECK(heads > 0 && kv_heads > 0 && heads % kv_heads == 0, "causal_attention_probs: ", heads,
                " query heads cannot share ", kv_heads, " kv heads");
    const index_t n = batch * heads * seq * seq;
    if (n <= 0) return;
    cuda_detail::attention_probs_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
        batch, seq, heads, kv_heads, head_dim, double(scale), qkv, qkv_row, lse, probs);
    HYENA_CUDA_CHECK_LAUNCH("attention_probs_kernel");
  }

  // sums: heads * seq doubles in device memory, accumulated.
  template <class T>
  static void attention_lag_sums(cuda_context& ctx, index_t batch, index_t heads, index_t seq, const T* probs,
                                 double* sums) {
    const index_t n = heads * seq;
    if (n <= 0) return;
    cuda_detail::lag_sums_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0, ctx.stream()>>>(
        batch, heads, seq, probs, sums);
    HYENA_CUDA_CHECK_LAUNCH("lag_sums_kernel");
  }

  template <class T>
  static double hyena_attention_alignment(cuda_context& ctx, index_t batch, index_t seq, index_t channels,
                                          index_t head_dim, const T* x0, const T* x1, const T* h, index_t ldh,
                                          const T* bias, const T* probs, T* d_x0, T* d_x1, T* d_h, T* d_bias,
                                          T grad_scale) {
    HYENA_CHECK(head_dim > 0 && channels % head_dim == 0, "hyena_attention_alignment: ", channels,
                " channels are not whole heads of ", head_dim);
    const index_t n = batch * seq * channels;
    if (n <= 0) return 0.0;
    cuda_detail::alignment_args<T> a{batch, seq, channels, head_dim, x0, x1, h, ldh, bias, probs, double(grad_scale)};
    if (d_x1)
      cuda_detail::alignment_columns_kernel<<<cuda_detail::grid_for(ctx, n), cuda_detail::block_threads, 0,
                                              ctx.stream()>>>(a, d_x1);
    HYENA_CUDA_CHECK_LAUNCH("alignment_columns_kernel");
    if (d_h || d_bias)
      cuda_detail::alignment_filter_kernel<<<cuda_detail::grid_for(ctx, channels * seq), cuda_detail::block_threads, 0,
                                             ctx.stream()>>>(a, d_h, d_bias);
    HYENA_CUDA_CHECK_LAUNCH("alignment_filter_kernel");
    const unsigned blocks = cuda_detail::grid_for(ctx, n);
    cuda_detail::carver cv;
    std::size_t at_partial = cv.take(sizeof(double) * blocks), at_slot = cv.take(sizeof(double));
    char* ws = static_cast<char*>(ctx.workspace(cv.used));
    double* partial = reinterpret_cast<double*>(ws + at_partial);
    cuda_detail::alignment_rows_kernel<<<blocks, cuda_detail::block_threads, 0, ctx.stream()>>>(a, d_x0, partial);
    HYENA_CUDA_CHECK_LAUNCH("alignment_rows_kernel");
    return cuda_detail::sum_to_host(ctx, blocks, partial, reinterpret_cast<double*>(ws + at_slot));
  }
};

}  // namespace hyena::backend
