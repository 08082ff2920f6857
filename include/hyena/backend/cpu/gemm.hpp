// cpu/gemm.hpp: matrix products on the host: gemm_kernel.hpp's blocked kernel, threaded.
//
// One product splits its rows across the context's threads (B is packed once, together);
// a batch of products (attention heads) runs one product per thread instead, which is the
// better level for many small ones. Packing buffers live in the context: no allocation
// per call once they have grown.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../context.hpp"
#include "../triangle.hpp"
#include "gemm_amx.hpp"
#include "gemm_kernel.hpp"

namespace hyena::backend {

// Per-thread packing buffers (B panels, one block of A; a partial sum of C when threads split
// the depth), grown on demand.
template <class T>
struct gemm_scratch {
  struct buffers {
    gemm_detail::aligned_vector<T> packed, apack, partial;
    gemm_detail::aligned_vector<std::uint32_t> packed_pairs, apack_pairs;  // gemm_bf16.hpp's packed forms
    void reserve(index_t packed_size) {
      if (static_cast<index_t>(packed.size()) < packed_size) packed.resize(packed_size);
      const index_t e = gemm_detail::tile<T>::mc * gemm_detail::tile<T>::kc;
      if (static_cast<index_t>(apack.size()) < e) apack.resize(e);
    }
    // Room for k x n of B and a block of A as depth pairs (gemm_bf16.hpp).
    void reserve_pairs(index_t k, index_t n) {
      const index_t pairs = gemm_detail::packed_pairs_size(k, n);
      if (static_cast<index_t>(packed_pairs.size()) < pairs) packed_pairs.resize(pairs);
      if (static_cast<index_t>(apack_pairs.size()) < gemm_detail::apack_pairs_size)
        apack_pairs.resize(gemm_detail::apack_pairs_size);
    }
  };
  std::vector<buffers> threads;
  buffers& at(int t, int count) {
    if (static_cast<int>(threads.size()) < count) threads.resize(count);
    return threads[t];
  }
};

template <class Base>
struct cpu_gemm_ops : Base {
  // C = alpha * op(A) * op(B) + beta * C, row-major, as cpu_ref's gemm (beta == 0 never reads C).
  // Not to be called from inside an OpenMP parallel region (use gemm_batched).
  template <class T>
  static void gemm(host_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha,
                   const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc,
                   triangle tri = triangle::none) {
    product(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, tri, static_cast<const T*>(nullptr));
  }

  // C = op(A) * op(B) + bias, the bias (n) added to every row of C (m x n): a linear layer's
  // forward, as cpu_ref's gemm_bias. The kernel adds the bias while each tile of C is in
  // registers, which saves add_bias's second pass over C.
  template <class T>
  static void gemm_bias(host_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const T* a,
                        index_t lda, const T* b, index_t ldb, const T* bias, T* c, index_t ldc) {
    product(ctx, trans_a, trans_b, m, n, k, T(1), a, lda, b, ldb, T(0), c, ldc, triangle::none, bias);
  }

  // `batch` independent products, matrix i at a + i * stride_a (and so on; a stride of 0
  // shares one matrix). Threads take whole products.
  template <class T>
  static void gemm_batched(host_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha,
                           const T* a, index_t lda, index_t stride_a, const T* b, index_t ldb, index_t stride_b,
                           T beta, T* c, index_t ldc, index_t stride_c, index_t batch,
                           triangle tri = triangle::none) {
    if (batch == 1 || m <= 0 || n <= 0 || k <= 0) {
      for (index_t i = 0; i < batch; ++i)  // (k == 0: A and B may be null, and are not offset)
        gemm(ctx, trans_a, trans_b, m, n, k, alpha, k > 0 ? a + i * stride_a : a, lda, k > 0 ? b + i * stride_b : b,
             ldb, beta, c + i * stride_c, ldc, tri);
      return;
    }
    using namespace gemm_detail;
    const int threads = static_cast<int>(std::min<index_t>(ctx.threads(), batch));
    auto& scratch = ctx.state<gemm_scratch<T>>();
    const index_t panels = (n + tile<T>::nr - 1) / tile<T>::nr;
    const bool pairs = bf16_products<T>(ctx);
    for (int t = 0; t < threads; ++t) {
      if (pairs) scratch.at(t, threads).reserve_pairs(k, n);
      else scratch.at(t, threads).reserve(packed_size<T>(k, n));
    }
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (index_t i = 0; i < batch; ++i) {
      auto& buf = scratch.threads[thread_index()];
      const auto A = operand<T>::of(a + i * stride_a, lda, trans_a);
      const auto B = operand<T>::of(b + i * stride_b, ldb, trans_b);
#if HYENA_HAS_BF16_PRODUCT
      if constexpr (std::is_same_v<T, float>)
        if (pairs) {
          pack_b_pairs(B, k, n, 0, panels, buf.packed_pairs.data());
          multiply_rows_bf16(tri, 0, m, n, k, alpha, A, buf.packed_pairs.data(), k, beta, c + i * stride_c, ldc,
                             buf.apack_pairs.data());
          continue;
        }
#endif
      pack_b(B, k, n, 0, panels, buf.packed.data());
      multiply_rows(tri, 0, m, n, k, alpha, A, buf.packed.data(), k, beta, c + i * stride_c, ldc, buf.apack.data());
    }
  }

 private:
  // gemm, plus a bias (n values, or null) added to every row of C.
  template <class T>
  static void product(host_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha,
                      const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc, triangle tri,
                      const T* bias) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {  // an empty sum: C = beta * C (A and B may be null, so the kernel is not entered)
      for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < (tri == triangle::c_lower ? std::min(n, i + 1) : n); ++j) {
          T& y = c[i * ldc + j];
          y = (beta == T(0) ? T(0) : beta * y) + (bias ? bias[j] : T(0));
        }
      return;
    }
    using namespace gemm_detail;
    const auto A = operand<T>::of(a, lda, trans_a);
    const auto B = operand<T>::of(b, ldb, trans_b);
    const index_t panels = (n + tile<T>::nr - 1) / tile<T>::nr, row_blocks = (m + tile<T>::mr - 1) / tile<T>::mr;
    // Wake other threads only for products worth a few microseconds each.
    const double flops = 2.0 * double(m) * double(n) * double(std::max<index_t>(k, 1));
    const int threads =
        std::max(1, static_cast<int>(std::min<double>({double(ctx.threads()), double(row_blocks), flops / 4e5})));
    auto& scratch = ctx.state<gemm_scratch<T>>();
    const index_t depth_blocks = (k + tile<T>::kc - 1) / tile<T>::kc;
    // (One thread takes this path too: it packs B a depth block at a time, in L2, instead of
    // all of it at once.)
    const bool by_depth = tri == triangle::none && !bias && depth_blocks >= 2 * threads && k >= 2 * std::max(m, n);
#if HYENA_HAS_BF16_PRODUCT
    if constexpr (std::is_same_v<T, float>) {
      if (bf16_products<T>(ctx)) {
        product_bf16(ctx, threads, by_depth, tri, A, B, m, n, k, alpha, beta, c, ldc, bias);
        return;
      }
    }
#endif
    if (by_depth) {
      split_depth(ctx, threads, A, B, m, n, k, alpha, beta, c, ldc);
      return;
    }
    if (threads <= 1) {
      auto& buf = scratch.at(0, 1);
      buf.reserve(packed_size<T>(k, n));
      pack_b(B, k, n, 0, panels, buf.packed.data());
      multiply_rows(tri, 0, m, n, k, alpha, A, buf.packed.data(), k, beta, c, ldc, buf.apack.data(), 0, bias);
      return;
    }
    auto& shared = scratch.at(0, threads);
    shared.reserve(packed_size<T>(k, n));
    for (int t = 1; t < threads; ++t) scratch.at(t, threads).reserve(0);
#pragma omp parallel num_threads(threads)
    {
      const int t = thread_index(), nt = thread_count();
      const index_t pchunk = (panels + nt - 1) / nt;
      pack_b(B, k, n, std::min(panels, t * pchunk), std::min(panels, (t + 1) * pchunk), shared.packed.data());
#pragma omp barrier
      // Whole row blocks per thread; with a triangle, later rows carry more (c_lower, a_lower)
      // or less (a_upper) work, so interleave blocks of rows instead of cutting in halves.
      const index_t step = tri == triangle::none ? (row_blocks + nt - 1) / nt : 1;
      for (index_t blk = index_t(t) * step; blk < row_blocks; blk += index_t(nt) * step) {
        const index_t lo = blk * tile<T>::mr, hi = std::min(m, (blk + step) * tile<T>::mr);
        multiply_rows(tri, lo, hi, n, k, alpha, A, shared.packed.data(), k, beta, c, ldc, scratch.threads[t].apack.data(),
                      0, bias);
      }
    }
  }

  // A product whose depth dwarfs its output, such as a weight gradient (dW = dY^T X, summed
  // over every token), splits the depth among threads instead of the rows. Each thread packs
  // its share of B one depth block (KC x n) at a time into its own buffer, which stays in L2,
  // and sums its depth blocks into its own m x n partial sum (thread 0 into C, with beta); the
  // partial sums are then added into C in thread order. Split by rows, every thread would read
  // all of B from one packed copy of it, too large for L2 once the depth runs into thousands.
  // On one thread it is the same loop without partial sums: one block of B packed at a time
  // made the weight gradients up to 25% faster than packing all of B first (docs/results.md
  // section 5, runs I and J).
  template <class T>
  static void split_depth(host_context& ctx, int threads, gemm_detail::operand<T> A, gemm_detail::operand<T> B,
                          index_t m, index_t n, index_t k, T alpha, T beta, T* c, index_t ldc) {
    using namespace gemm_detail;
    constexpr index_t kc = tile<T>::kc;
    auto& scratch = ctx.state<gemm_scratch<T>>();
    for (int t = 0; t < threads; ++t) {
      auto& buf = scratch.at(t, threads);
      buf.reserve(packed_size<T>(kc, n));
      if (t > 0 && static_cast<index_t>(buf.partial.size()) < m * n) buf.partial.resize(m * n);
    }
    const index_t blocks = (k + kc - 1) / kc, panels = (n + tile<T>::nr - 1) / tile<T>::nr;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      const int t = thread_index(), nt = thread_count();
      auto& buf = scratch.threads[t];
      T* out = t == 0 ? c : buf.partial.data();
      const index_t ldo = t == 0 ? ldc : n, b_lo = blocks * t / nt, b_hi = blocks * (t + 1) / nt;
      for (index_t blk = b_lo; blk < b_hi; ++blk) {  // at least two blocks each (the caller's rule)
        const index_t p0 = blk * kc, depth = std::min(kc, k - p0);
        const operand<T> a_part{A.data + p0 * A.cs, A.rs, A.cs}, b_part{B.data + p0 * B.rs, B.rs, B.cs};
        pack_b(b_part, depth, n, 0, panels, buf.packed.data());
        const T b = blk > b_lo ? T(1) : t == 0 ? beta : T(0);
        multiply_rows(triangle::none, 0, m, n, depth, alpha, a_part, buf.packed.data(), depth, b, out, ldo,
                      buf.apack.data());
      }
#pragma omp barrier
      add_partial_sums(scratch, t, nt, m, n, c, ldc);
    }
  }

  // Inside split_depth's parallel region, after its barrier: thread t of nt adds the other
  // threads' m x n partial sums into its share of C's rows, in thread order.
  template <class T>
  static void add_partial_sums(gemm_scratch<T>& scratch, int t, int nt, index_t m, index_t n, T* c, index_t ldc) {
    for (index_t i = m * t / nt; i < m * (t + 1) / nt; ++i) {  // rows split again for the sum
      T* ci = c + i * ldc;
      for (int u = 1; u < nt; ++u) {
        const T* pi = scratch.threads[u].partial.data() + i * n;
        for (index_t j = 0; j < n; ++j) ci[j] += pi[j];
      }
    }
  }

#if HYENA_HAS_BF16_PRODUCT
  // product and split_depth with bf16 inputs and fp32 sums (gemm_bf16.hpp): the same division of
  // the work among threads (rows, or the depth when by_depth), B packed straight into depth pairs,
  // A packed a block at a time. Rows are dealt in the kernel's tiles (AMX: 32, vdpbf16ps: 8).
  static void product_bf16(host_context& ctx, int threads, bool by_depth, triangle tri, gemm_detail::operand<float> A,
                           gemm_detail::operand<float> B, index_t m, index_t n, index_t k, float alpha, float beta,
                           float* c, index_t ldc, const float* bias) {
    using namespace gemm_detail;
    constexpr index_t kc = tile<float>::kc;
    const index_t mr = bf16_tile_rows();
    const index_t panels = (n + tile<float>::nr - 1) / tile<float>::nr, row_blocks = (m + mr - 1) / mr;
    auto& scratch = ctx.state<gemm_scratch<float>>();
    for (int t = 0; t < threads; ++t) {
      auto& buf = scratch.at(t, threads);
      if (by_depth) {
        buf.reserve_pairs(kc, n);
        if (t > 0 && static_cast<index_t>(buf.partial.size()) < m * n) buf.partial.resize(m * n);
      } else {
        buf.reserve_pairs(t == 0 ? k : 0, n);
      }
    }
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      const int t = thread_index(), nt = thread_count();
      auto& buf = scratch.threads[t];
      if (by_depth) {
        const index_t blocks = (k + kc - 1) / kc, b_lo = blocks * t / nt, b_hi = blocks * (t + 1) / nt;
        float* out = t == 0 ? c : buf.partial.data();
        const index_t ldo = t == 0 ? ldc : n;
        for (index_t blk = b_lo; blk < b_hi; ++blk) {
          const index_t p0 = blk * kc, depth = std::min(kc, k - p0);
          const operand<float> a_part{A.data + p0 * A.cs, A.rs, A.cs}, b_part{B.data + p0 * B.rs, B.rs, B.cs};
          pack_b_pairs(b_part, depth, n, 0, panels, buf.packed_pairs.data());
          const float b = blk > b_lo ? 1.0f : t == 0 ? beta : 0.0f;
          multiply_rows_bf16(triangle::none, 0, m, n, depth, alpha, a_part, buf.packed_pairs.data(), depth, b, out,
                             ldo, buf.apack_pairs.data());
        }
#pragma omp barrier
        add_partial_sums(scratch, t, nt, m, n, c, ldc);
      } else {
        auto& shared = scratch.threads[0];
        const index_t pchunk = (panels + nt - 1) / nt, p_lo = std::min(panels, t * pchunk),
                      p_hi = std::min(panels, (t + 1) * pchunk);
        pack_b_pairs(B, k, n, p_lo, p_hi, shared.packed_pairs.data());
#pragma omp barrier
        // As product: halves of the rows, or with a triangle, blocks of rows in turn.
        const index_t step = tri == triangle::none ? (row_blocks + nt - 1) / nt : 1;
        for (index_t blk = index_t(t) * step; blk < row_blocks; blk += index_t(nt) * step) {
          const index_t lo = blk * mr, hi = std::min(m, (blk + step) * mr);
          multiply_rows_bf16(tri, lo, hi, n, k, alpha, A, shared.packed_pairs.data(), k, beta, c, ldc,
                             buf.apack_pairs.data(), 0, bias);
        }
      }
    }
  }
#endif

  static int thread_count() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
  }
};

}  // namespace hyena::backend
