// cpu/fused_attention.hpp: causal attention without (seq x seq) matrices in memory.
//
// Computing all scores, then the softmax, then the weighted values, as separate passes
// writes and re-reads batch * heads * seq^2 floats (8 MiB a layer at the benchmark shape),
// far beyond the caches: measured, that traffic, not arithmetic, was half of the teacher's
// training step. Here each (batch, head) pair is one thread's task and its queries go in
// blocks of `block` rows: the block's scores, probabilities and their gradients live in a
// (block x seq) buffer that stays in L2, and backward rebuilds the probabilities from the
// per-row log-sum-exp the forward saved (the FlashAttention recipe: recompute, don't store).
// The products inside are gemm_kernel.hpp's, with the triangle hints so masked-out blocks
// are never computed; under matmul_precision::medium, gemm_bf16.hpp's or gemm_amx.hpp's (bf16
// inputs, fp32 sums), the softmax and its gradient staying fp32.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../context.hpp"
#include "attention.hpp"
#include "gemm_amx.hpp"
#include "gemm_kernel.hpp"

namespace hyena::backend {

namespace fused_attention_detail {

// One thread's buffers: a block of scores/probabilities, a block of their gradients, packed
// operands, and the A-block scratch of the gemm kernel; with bf16 products, each packed operand
// also as depth pairs (gemm_bf16.hpp), and the pairs' A-block scratch.
template <class T>
struct worker {
  gemm_detail::aligned_vector<T> s, ds, k_t, v_t, k_rows, v_rows, small, apack;
  gemm_detail::aligned_vector<T> row_values;  // one value per row of a block: 1 / sum in forward, dO . o in backward
  gemm_detail::aligned_vector<std::uint32_t> k_t2, v_t2, k_rows2, v_rows2, small2, apack2;
  template <class V>
  static void grow(gemm_detail::aligned_vector<V>& v, index_t n) {
    if (static_cast<index_t>(v.size()) < n) v.resize(n);
  }
};

// The products of one thread's task, in fp32 or, when `pairs` (matmul_precision::medium with
// bf16 products built in), with bf16 inputs: pack packs op(B) (k x n) into `fp32`, or for bf16
// into `paired`; multiply runs multiply_rows or multiply_rows_bf16 (gemm_amx.hpp) on it.
template <class T>
struct block_products {
  bool pairs;
  worker<T>& w;
  static index_t panels(index_t n) { return (n + gemm_detail::tile<T>::nr - 1) / gemm_detail::tile<T>::nr; }
  void pack(gemm_detail::operand<T> b, index_t k, index_t n, T* fp32, std::uint32_t* paired) const {
#if HYENA_HAS_BF16_PRODUCT
    if constexpr (std::is_same_v<T, float>)
      if (pairs) {
        gemm_detail::pack_b_pairs(b, k, n, 0, panels(n), paired);
        return;
      }
#endif
    gemm_detail::pack_b(b, k, n, 0, panels(n), fp32);
  }
  void multiply(triangle tri, index_t m, index_t n, index_t k, T alpha, gemm_detail::operand<T> a, const T* fp32,
                const std::uint32_t* paired, index_t ldp, T beta, T* c, index_t ldc, index_t diag) const {
#if HYENA_HAS_BF16_PRODUCT
    if constexpr (std::is_same_v<T, float>)
      if (pairs) {
        gemm_detail::multiply_rows_bf16(tri, 0, m, n, k, alpha, a, paired, ldp, beta, c, ldc, w.apack2.data(), diag);
        return;
      }
#endif
    gemm_detail::multiply_rows(tri, 0, m, n, k, alpha, a, fp32, ldp, beta, c, ldc, w.apack.data(), diag);
  }
};
template <class T>
struct workers {
  std::vector<worker<T>> all;
};

// Row i of a block starting at query t0 sees keys [0, t0 + i]: the raw scores q.k become
// e = exp(scale * s - max) in place, zero beyond up to kend (scale applied here, so the product
// that wrote them runs with alpha 1 and its tiles go straight to memory); inv[i] = 1 / sum(e) and
// lse[i], of the scaled scores, are set. The probabilities p = e * inv are never formed: the
// caller scales the rows of e v instead, a (block x head_dim) pass rather than a (block x seq)
// one (FlashAttention-2's deferred normalisation, Dao 2023, section 3.1.1). The exponentials and
// their sum come from one pass, the sum in fp32 lanes over blocks of sum_block terms and in
// double across blocks (attention.hpp's blocked_dot).
template <class T>
void softmax_rows(index_t rows, index_t t0, index_t kend, T* s, index_t lds, T scale, T* lse, T* inv) {
  using batch = xsimd::batch<T>;
  constexpr index_t w = static_cast<index_t>(batch::size);
  for (index_t i = 0; i < rows; ++i) {
    T* r = s + i * lds;
    const index_t n = t0 + i + 1;
    index_t j = 0;
    batch vmax(r[0] * scale);
    for (; j + w <= n; j += w) vmax = xsimd::max(vmax, batch::load_unaligned(r + j) * scale);
    alignas(64) T lanes[w];
    vmax.store_aligned(lanes);
    T mx = *std::max_element(lanes, lanes + w);
    for (; j < n; ++j) mx = std::max(mx, r[j] * scale);
    double sum = 0;
    for (index_t lo = 0; lo < n; lo += attention_detail::sum_block) {
      const index_t hi = std::min(n, lo + attention_detail::sum_block);
      batch acc(T(0));
      for (j = lo; j + w <= hi; j += w) {
        const batch e = xsimd::exp(batch::load_unaligned(r + j) * scale - mx);
        e.store_unaligned(r + j);
        acc += e;
      }
      if (j < hi && j + w <= lds) {  // the row's last, partial vector, whole where the row has room
        xsimd::exp(batch::load_unaligned(r + j) * scale - mx).store_unaligned(r + j);
        std::fill(r + n, r + j + w, T(0));  // its lanes past the row's own key, before they are summed
        acc += batch::load_unaligned(r + j);
        j = hi;
      }
      double part = xsimd::hadd(acc);
      for (; j < hi; ++j) part += (r[j] = std::exp(r[j] * scale - mx));
      sum += part;
    }
    std::fill(r + n, r + kend, T(0));
    inv[i] = static_cast<T>(1.0 / sum);
    lse[i] = static_cast<T>(double(mx) + std::log(sum));
  }
}

// Backward's elementwise step on a block, one pass: from the raw scores s (as softmax_rows takes
// them) the probabilities p = exp(scale * s - lse), and from dp = dO v^T the scores' gradient
// ds = p * (dp - rowdot) * scale, where rowdot[i] = dO_i . o_i (= sum_j p_j dp_j); both in place,
// on row i's keys [0, t0 + i] and zero beyond up to kend.
template <class T>
void probabilities_and_score_grads(index_t rows, index_t t0, index_t kend, T* s, T* dp, index_t ld, T scale,
                                   const T* lse, const T* rowdot) {
  using batch = xsimd::batch<T>;
  constexpr index_t w = static_cast<index_t>(batch::size);
  for (index_t i = 0; i < rows; ++i) {
    T *pr = s + i * ld, *dr = dp + i * ld;
    const index_t n = t0 + i + 1;
    const T shift = lse[i], dot = rowdot[i];
    index_t j = 0;
    for (; j < n && j + w <= ld; j += w) {  // whole vectors, past n where the row has room (zeroed next)
      const batch p = xsimd::exp(batch::load_unaligned(pr + j) * scale - shift);
      p.store_unaligned(pr + j);
      (p * (batch::load_unaligned(dr + j) - dot) * scale).store_unaligned(dr + j);
    }
    for (; j < n; ++j) {
      pr[j] = std::exp(pr[j] * scale - shift);
      dr[j] = pr[j] * (dr[j] - dot) * scale;
    }
    std::fill(pr + n, pr + kend, T(0));
    std::fill(dr + n, dr + kend, T(0));
  }
}

}  // namespace fused_attention_detail

template <class Base>
struct cpu_fused_attention_ops : Base {
  static constexpr index_t block = 64;  // query rows per block: a (64 x seq) buffer per thread

  // As cpu_ref's causal_attention_forward (same layout and results within float rounding).
  template <class T>
  static void causal_attention_forward(host_context& ctx, index_t batch, index_t seq, index_t heads, index_t kv_heads,
                                       index_t head_dim, T scale, const T* qkv, index_t qkv_row, T* out,
                                       index_t out_row, T* lse) {
    using namespace gemm_detail;
    check(seq, heads, kv_heads, head_dim, qkv_row, out_row);
    const index_t D = head_dim, L = seq, group = heads / kv_heads;
    auto& ws = prepare<T>(ctx);
    const bool pairs = bf16_products<T>(ctx);
#pragma omp parallel for schedule(dynamic) num_threads(ctx.threads()) if (ctx.threads() > 1 && batch * heads > 1)
    for (index_t task = 0; task < batch * heads; ++task) {
      const index_t b = task / heads, h = task % heads, g = h / group;
      auto& w = ws.all[thread_index()];
      worker_grow(w, L, D, pairs);
      const fused_attention_detail::block_products<T> prod{pairs, w};
      const T* rows = qkv + b * L * qkv_row;
      const T *q = rows + h * D, *k = rows + (heads + g) * D, *v = rows + (heads + kv_heads + g) * D;
      prod.pack(operand<T>::of(k, qkv_row, true), D, L, w.k_t.data(), w.k_t2.data());
      prod.pack(operand<T>::of(v, qkv_row, false), L, D, w.v_rows.data(), w.v_rows2.data());
      for (index_t t0 = 0; t0 < L; t0 += block) {
        const index_t n_rows = std::min(block, L - t0), kend = t0 + n_rows;
        // scores of the block (only keys <= query are computed; scaled in the softmax), softmax, then P v
        prod.multiply(triangle::c_lower, n_rows, kend, D, T(1), operand<T>::of(q + t0 * qkv_row, qkv_row, false),
                      w.k_t.data(), w.k_t2.data(), D, T(0), w.s.data(), L, t0);
        T* inv = w.row_values.data();
        fused_attention_detail::softmax_rows(n_rows, t0, kend, w.s.data(), L, scale, lse + (b * heads + h) * L + t0,
                                             inv);
        T* o = out + (b * L + t0) * out_row + h * D;
        prod.multiply(triangle::a_lower, n_rows, D, kend, T(1), operand<T>::of(w.s.data(), L, false), w.v_rows.data(),
                      w.v_rows2.data(), L, T(0), o, out_row, t0);
        for (index_t i = 0; i < n_rows; ++i)  // the softmax's normalisation, deferred to here
          for (index_t d = 0; d < D; ++d) o[i * out_row + d] *= inv[i];
      }
    }
  }

  // As cpu_ref's causal_attention_backward. One task per (batch, kv head): the query heads
  // of a group add into the same dk and dv, so they share a thread.
  template <class T>
  static void causal_attention_backward(host_context& ctx, index_t batch, index_t seq, index_t heads,
                                        index_t kv_heads, index_t head_dim, T scale, const T* qkv, index_t qkv_row,
                                        const T* out, const T* dout, index_t out_row, const T* lse, T* dqkv) {
    using namespace gemm_detail;
    check(seq, heads, kv_heads, head_dim, qkv_row, out_row);
    const index_t D = head_dim, L = seq, group = heads / kv_heads;
    auto& ws = prepare<T>(ctx);
    const bool pairs = bf16_products<T>(ctx);
#pragma omp parallel for schedule(dynamic) num_threads(ctx.threads()) if (ctx.threads() > 1 && batch * kv_heads > 1)
    for (index_t task = 0; task < batch * kv_heads; ++task) {
      const index_t b = task / kv_heads, g = task % kv_heads;
      auto& w = ws.all[thread_index()];
      worker_grow(w, L, D, pairs);
      const fused_attention_detail::block_products<T> prod{pairs, w};
      const T* rows = qkv + b * L * qkv_row;
      T* drows = dqkv + b * L * qkv_row;
      const index_t kc = (heads + g) * D, vc = (heads + kv_heads + g) * D;
      for (index_t t = 0; t < L; ++t) {  // dk, dv accumulate over query blocks and heads
        std::fill(drows + t * qkv_row + kc, drows + t * qkv_row + kc + D, T(0));
        std::fill(drows + t * qkv_row + vc, drows + t * qkv_row + vc + D, T(0));
      }
      prod.pack(operand<T>::of(rows + kc, qkv_row, true), D, L, w.k_t.data(), w.k_t2.data());         // s = q k^T
      prod.pack(operand<T>::of(rows + vc, qkv_row, true), D, L, w.v_t.data(), w.v_t2.data());         // dp = do v^T
      prod.pack(operand<T>::of(rows + kc, qkv_row, false), L, D, w.k_rows.data(), w.k_rows2.data());  // dq = ds k
      for (index_t h = g * group; h < (g + 1) * group; ++h) {
        const T* q = rows + h * D;
        const T* o = out + b * L * out_row + h * D;
        const T* dO = dout + b * L * out_row + h * D;
        const T* row_lse = lse + (b * heads + h) * L;
        for (index_t t0 = 0; t0 < L; t0 += block) {
          const index_t n = std::min(block, L - t0), kend = t0 + n;
          T *p = w.s.data(), *ds = w.ds.data();
          prod.multiply(triangle::c_lower, n, kend, D, T(1), operand<T>::of(q + t0 * qkv_row, qkv_row, false),
                        w.k_t.data(), w.k_t2.data(), D, T(0), p, L, t0);
          prod.multiply(triangle::c_lower, n, kend, D, T(1), operand<T>::of(dO + t0 * out_row, out_row, false),
                        w.v_t.data(), w.v_t2.data(), D, T(0), ds, L, t0);
          T* rowdot = w.row_values.data();
          for (index_t i = 0; i < n; ++i) {
            const index_t at = (t0 + i) * out_row;
            rowdot[i] = static_cast<T>(attention_detail::blocked_dot<T>(dO + at, o + at, D));
          }
          fused_attention_detail::probabilities_and_score_grads(n, t0, kend, p, ds, L, scale, row_lse + t0, rowdot);
          // dq = ds k (assigned), dk += ds^T q, dv += p^T dO
          prod.multiply(triangle::a_lower, n, D, kend, T(1), operand<T>::of(ds, L, false), w.k_rows.data(),
                        w.k_rows2.data(), L, T(0), drows + t0 * qkv_row + h * D, qkv_row, t0);
          prod.pack(operand<T>::of(q + t0 * qkv_row, qkv_row, false), n, D, w.small.data(), w.small2.data());
          prod.multiply(triangle::a_upper, kend, D, n, T(1), operand<T>::of(ds, L, true), w.small.data(),
                        w.small2.data(), n, T(1), drows + kc, qkv_row, -t0);
          prod.pack(operand<T>::of(dO + t0 * out_row, out_row, false), n, D, w.small.data(), w.small2.data());
          prod.multiply(triangle::a_upper, kend, D, n, T(1), operand<T>::of(p, L, true), w.small.data(),
                        w.small2.data(), n, T(1), drows + vc, qkv_row, -t0);
        }
      }
    }
  }

 private:
  static void check(index_t seq, index_t heads, index_t kv_heads, index_t head_dim, index_t qkv_row, index_t out_row) {
    HYENA_CHECK(seq > 0 && heads > 0 && kv_heads > 0 && head_dim > 0 && heads % kv_heads == 0,
                "causal_attention: bad sizes (seq ", seq, ", heads ", heads, ", kv_heads ", kv_heads, ", head_dim ",
                head_dim, ")");
    HYENA_CHECK(qkv_row >= (heads + 2 * kv_heads) * head_dim && out_row >= heads * head_dim,
                "causal_attention: row strides ", qkv_row, " / ", out_row, " too short for the heads");
  }
  template <class T>
  static fused_attention_detail::workers<T>& prepare(host_context& ctx) {
    auto& ws = ctx.state<fused_attention_detail::workers<T>>();
    if (static_cast<int>(ws.all.size()) < ctx.threads()) ws.all.resize(ctx.threads());
    return ws;
  }
  template <class T>
  static void worker_grow(fused_attention_detail::worker<T>& w, index_t L, index_t D, bool pairs) {
    using namespace gemm_detail;
    using W = fused_attention_detail::worker<T>;
    W::grow(w.s, block * L);
    W::grow(w.ds, block * L);
    W::grow(w.row_values, block);
    if (!pairs) {  // fp32 packs; bf16 products pack straight into pairs and use only those below
      W::grow(w.k_t, packed_size<T>(D, L));
      W::grow(w.v_t, packed_size<T>(D, L));
      W::grow(w.k_rows, packed_size<T>(L, D));
      W::grow(w.v_rows, packed_size<T>(L, D));
      W::grow(w.small, packed_size<T>(block, D));
      W::grow(w.apack, tile<T>::mc * tile<T>::kc);
      return;
    }
    W::grow(w.k_t2, packed_pairs_size(D, L));
    W::grow(w.v_t2, packed_pairs_size(D, L));
    W::grow(w.k_rows2, packed_pairs_size(L, D));
    W::grow(w.v_rows2, packed_pairs_size(L, D));
    W::grow(w.small2, packed_pairs_size(block, D));
    W::grow(w.apack2, apack_pairs_size);
  }
};

}  // namespace hyena::backend
