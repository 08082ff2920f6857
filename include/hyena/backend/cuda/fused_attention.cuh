// cuda/fused_attention.cuh: the fused causal attention (cpu_ref's causal_attention_forward /
// _backward, on fused qkv rows) without materialising the (L x L) scores.
//
// One warp per query row (b, h, t). The lanes split the head's D dimensions (at most
// max_lanes_dims per lane, so D <= 256); the warp walks the keys j <= t once, forming each score
// with a warp sum and keeping the running maximum, the running normaliser and the output
// accumulator (the online softmax of Milakov & Gimelshein 2018, as in FlashAttention, Dao et al.
// 2022), all in double. It keeps lse = max + log(normaliser) per row. The backward warp rebuilds
// each probability from lse, accumulates dq in registers and adds its dk, dv contributions into a
// double workspace with atomics (rows of several queries, and of GQA's query heads, meet there);
// a last pass writes every dk, dv column of dqkv.
//
// Written for correctness first: no shared-memory tiling of K and V yet (docs/cuda.md).
#pragma once
#include <cmath>

#include "common.cuh"

namespace hyena::backend {

namespace cuda_detail {

inline constexpr int max_lane_dims = 8;  // head_dim <= 32 * 8
inline constexpr int attention_warps = 4;  // warps (query rows) per block

// The fused row layout shared by both passes.
struct qkv_layout {
  index_t batch, seq, heads, kv_heads, D, qkv_row;
  __host__ __device__ index_t group() const { return heads / kv_heads; }
  __host__ __device__ index_t q_col(index_t h) const { return h * D; }
  __host__ __device__ index_t k_col(index_t h) const { return (heads + h / group()) * D; }
  __host__ __device__ index_t v_col(index_t h) const { return (heads + kv_heads + h / group()) * D; }
};

template <class T>
__global__ void fused_attention_forward_kernel(qkv_layout l, double scale, const T* qkv, T* out, index_t out_row,
                                               T* lse) {
  const index_t row = index_t(blockIdx.x) * attention_warps + threadIdx.x / 32;  // (b, h, t)
  const int lane = threadIdx.x & 31;
  if (row >= l.batch * l.heads * l.seq) return;  // whole warps leave together
  const index_t t = row % l.seq, h = (row / l.seq) % l.heads, b = row / (l.seq * l.heads);
  const T* q = qkv + (b * l.seq + t) * l.qkv_row + l.q_col(h);
  double qr[max_lane_dims], acc[max_lane_dims];
  for (int u = 0; u < max_lane_dims; ++u) {
    const index_t i = lane + 32 * u;
    qr[u] = i < l.D ? double(q[i]) : 0.0;
    acc[u] = 0;
  }
  double mx = -HUGE_VAL, z = 0;
  for (index_t j = 0; j <= t; ++j) {
    const T* kj = qkv + (b * l.seq + j) * l.qkv_row + l.k_col(h);
    const T* vj = qkv + (b * l.seq + j) * l.qkv_row + l.v_col(h);
    double d = 0;
    for (int u = 0; u < max_lane_dims; ++u) {
      const index_t i = lane + 32 * u;
      if (i < l.D) d += qr[u] * double(kj[i]);
    }
    const double s = scale * warp_all_sum(d);
    const double m_new = max(mx, s), correction = exp(mx - m_new), e = exp(s - m_new);
    z = z * correction + e;
    for (int u = 0; u < max_lane_dims; ++u) {
      const index_t i = lane + 32 * u;
      if (i < l.D) acc[u] = acc[u] * correction + e * double(vj[i]);
    }
    mx = m_new;
  }
  T* o = out + (b * l.seq + t) * out_row + h * l.D;
  for (int u = 0; u < max_lane_dims; ++u) {
    const index_t i = lane + 32 * u;
    if (i < l.D) o[i] = T(acc[u] / z);
  }
  if (lane == 0) lse[(b * l.heads + h) * l.seq + t] = T(mx + log(z));
}

// gkv: (batch, seq, 2 * kv_heads * D) doubles, zeroed: k gradients, then v gradients.
template <class T>
__global__ void fused_attention_backward_kernel(qkv_layout l, double scale, const T* qkv, const T* out,
                                                const T* dout, index_t out_row, const T* lse, T* dqkv, double* gkv) {
  const index_t row = index_t(blockIdx.x) * attention_warps + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= l.batch * l.heads * l.seq) return;
  const index_t t = row % l.seq, h = (row / l.seq) % l.heads, b = row / (l.seq * l.heads);
  const index_t kv_width = 2 * l.kv_heads * l.D, gk = (h / l.group()) * l.D, gv = (l.kv_heads + h / l.group()) * l.D;
  const T* q = qkv + (b * l.seq + t) * l.qkv_row + l.q_col(h);
  const T* o = out + (b * l.seq + t) * out_row + h * l.D;
  const T* dy = dout + (b * l.seq + t) * out_row + h * l.D;
  double qr[max_lane_dims], dyr[max_lane_dims], dq[max_lane_dims], rowdot = 0;
  for (int u = 0; u < max_lane_dims; ++u) {
    const index_t i = lane + 32 * u;
    qr[u] = i < l.D ? double(q[i]) : 0.0;
    dyr[u] = i < l.D ? double(dy[i]) : 0.0;
    dq[u] = 0;
    if (i < l.D) rowdot += dyr[u] * double(o[i]);
  }
  rowdot = warp_all_sum(rowdot);  // sum_j p_j dp_j == dout_t . out_t
  const double l_t = double(lse[(b * l.heads + h) * l.seq + t]);
  for (index_t j = 0; j <= t; ++j) {
    const T* kj = qkv + (b * l.seq + j) * l.qkv_row + l.k_col(h);
    const T* vj = qkv + (b * l.seq + j) * l.qkv_row + l.v_col(h);
    double d = 0, e = 0;
    for (int u = 0; u < max_lane_dims; ++u) {
      const index_t i = lane + 32 * u;
      if (i < l.D) {
        d += qr[u] * double(kj[i]);
        e += dyr[u] * double(vj[i]);
      }
    }
    const double p = exp(scale * warp_all_sum(d) - l_t), ds = p * (warp_all_sum(e) - rowdot) * scale;
    double* g = gkv + (b * l.seq + j) * kv_width;
    for (int u = 0; u < max_lane_dims; ++u) {
      const index_t i = lane + 32 * u;
      if (i < l.D) {
        dq[u] += ds * double(kj[i]);
        atomicAdd(g + gk + i, ds * qr[u]);
        atomicAdd(g + gv + i, p * dyr[u]);
      }
    }
  }
  T* dqr = dqkv + (b * l.seq + t) * l.qkv_row + l.q_col(h);
  for (int u = 0; u < max_lane_dims; ++u) {
    const index_t i = lane + 32 * u;
    if (i < l.D) dqr[i] = T(dq[u]);
  }
}

// dqkv's k and v columns of every row from the workspace.
template <class T>
__global__ void fused_attention_kv_store_kernel(qkv_layout l, const double* gkv, T* dqkv) {
  const index_t kv_width = 2 * l.kv_heads * l.D;
  HYENA_GRID_LOOP(idx, l.batch * l.seq * kv_width) {
    const index_t r = idx / kv_width, c = idx % kv_width;
    dqkv[r * l.qkv_row + l.heads * l.D + c] = T(gkv[idx]);
  }
}

inline qkv_layout check_fused_attention(index_t batch, index_t seq, index_t heads, index_t kv_heads, index_t head_dim,
                                        index_t qkv_row, index_t out_row) {
  HYENA_CHECK(batch >= 0 && seq >= 0 && heads > 0 && kv_heads > 0 && heads % kv_heads == 0, "causal_attention: ",
              heads, " query heads cannot share ", kv_heads, " kv heads");
  HYENA_CHECK(head_dim > 0 && head_dim <= 32 * max_lane_dims, "causal_attention: head_dim ", head_dim,
              " not in [1, ", 32 * max_lane_dims, "] (the cuda kernel's limit)");
  HYENA_CHECK(qkv_row >= (heads + 2 * kv_heads) * head_dim && out_row >= heads * head_dim,
              "causal_attention: row strides ", qkv_row, " / ", out_row, " shorter than the fused rows");
  return {batch, seq, heads, kv_heads, head_dim, qkv_row};
}

inline unsigned attention_blocks(index_t rows) {
  const index_t blocks = (rows + attention_warps - 1) / attention_warps;
  HYENA_CHECK(blocks <= index_t(0x7fffffff), "causal_attention: ", rows, " query rows exceed the grid limit");
  return unsigned(blocks);
}

}  // namespace cuda_detail

struct cuda_fused_attention_ops {
  template <class T>
  static void causal_attention_forward(cuda_context& ctx, index_t batch, index_t seq, index_t heads, index_t kv_heads,
                                       index_t head_dim, T scale, const T* qkv, index_t qkv_row, T* out,
                                       index_t out_row, T* lse) {
    auto l = cuda_detail::check_fused_attention(batch, seq, heads, kv_heads, head_dim, qkv_row, out_row);
    const index_t rows = batch * heads * seq;
    if (rows == 0) return;
    cuda_detail::fused_attention_forward_kernel<<<cuda_detail::attention_blocks(rows), 32 * cuda_detail::attention_warps,
                                                   0, ctx.stream()>>>(l, double(scale), qkv, out, out_row, lse);
    HYENA_CUDA_CHECK_LAUNCH("fused_attention_forward_kernel");
  }

  template <class T>
  static void causal_attention_backward(cuda_context& ctx, index_t batch, index_t seq, index_t heads, index_t kv_heads,
                                        index_t head_dim, T scale, const T* qkv, index_t qkv_row, const T* out,
                                        const T* dout, index_t out_row, const T* lse, T* dqkv) {
    auto l = cuda_detail::check_fused_attention(batch, seq, heads, kv_heads, head_dim, qkv_row, out_row);
    const index_t rows = batch * heads * seq, kv_values = batch * seq * 2 * kv_heads * head_dim;
    if (rows == 0) return;
    auto* gkv = static_cast<double*>(ctx.workspace(sizeof(double) * std::size_t(kv_values)));
    HYENA_CUDA_CHECK(cudaMemsetAsync(gkv, 0, sizeof(double) * std::size_t(kv_values), ctx.stream()));
    cuda_detail::fused_attention_backward_kernel<<<cuda_detail::attention_blocks(rows),
                                                    32 * cuda_detail::attention_warps, 0, ctx.stream()>>>(
        l, double(scale), qkv, out, dout, out_row, lse, dqkv, gkv);
    HYENA_CUDA_CHECK_LAUNCH("fused_attention_backward_kernel");
    cuda_detail::fused_attention_kv_store_kernel<<<cuda_detail::grid_for(ctx, kv_values), cuda_detail::block_threads, 0,
                                                    ctx.stream()>>>(l, gkv, dqkv);
    HYENA_CUDA_CHECK_LAUNCH("fused_attention_kv_store_kernel");
  }
};

}  // namespace hyena::backend
