// cuda/gemm.cuh: row-major GEMM through cuBLAS. cuBLAS is column-major and a row-major
// matrix read column-major is its transpose, so C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T: swap the operands and m <-> n, keep the transpose flags.
#pragma once
#include <climits>
#include <type_traits>

#include "../triangle.hpp"
#include "common.cuh"
#include "elementwise.cuh"

namespace hyena::backend {

namespace cuda_detail {
inline int to_int(index_t v, const char* what) {
  HYENA_CHECK(v >= 0 && v <= INT_MAX, "cuda gemm: ", what, " = ", v, " does not fit cuBLAS's int");
  return int(v);
}
inline cublasOperation_t op_of(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }
}  // namespace cuda_detail

struct cuda_gemm_ops {
  // C = alpha op(A) op(B) + beta C, row-major, as cpu_ref's gemm; beta == 0 never reads C.
  template <class T>
  static void gemm(cuda_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a,
                   index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc, triangle = triangle::none) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cuda gemm: float or double only");
    using cuda_detail::to_int;
    if (m == 0 || n == 0) return;
    int M = to_int(m, "m"), N = to_int(n, "n"), K = to_int(k, "k");
    int LDA = to_int(std::max<index_t>(lda, 1), "lda"), LDB = to_int(std::max<index_t>(ldb, 1), "ldb");
    int LDC = to_int(ldc, "ldc");
    auto ta = cuda_detail::op_of(trans_a), tb = cuda_detail::op_of(trans_b);
    if constexpr (std::is_same_v<T, float>)
      HYENA_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), tb, ta, N, M, K, &alpha, b, LDB, a, LDA, &beta, c, LDC));
    else
      HYENA_CUBLAS_CHECK(cublasDgemm(ctx.cublas(), tb, ta, N, M, K, &alpha, b, LDB, a, LDA, &beta, c, LDC));
  }

  // C = op(A) op(B) + bias (n values, added to every row), as cpu_ref's gemm_bias: the
  // product, then add_bias's pass over C, which needs C's rows contiguous (ldc == n).
  template <class T>
  static void gemm_bias(cuda_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const T* a,
                        index_t lda, const T* b, index_t ldb, const T* bias, T* c, index_t ldc) {
    HYENA_CHECK(ldc == n, "cuda gemm_bias: C's rows must be contiguous (ldc ", ldc, " != n ", n, ")");
    gemm(ctx, trans_a, trans_b, m, n, k, T(1), a, lda, b, ldb, T(0), c, ldc);
    cuda_elementwise_ops::add_bias(ctx, m, n, bias, c);
  }

  // `batch` products, matrix i at a + i*stride_a etc.; stride 0 shares one matrix. The triangle
  // hint is not used: cuBLAS computes whole products, which is always correct.
  template <class T>
  static void gemm_batched(cuda_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha,
                           const T* a, index_t lda, index_t stride_a, const T* b, index_t ldb, index_t stride_b, T beta,
                           T* c, index_t ldc, index_t stride_c, index_t batch, triangle = triangle::none) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cuda gemm: float or double only");
    using cuda_detail::to_int;
    if (m == 0 || n == 0 || batch == 0) return;
    int M = to_int(m, "m"), N = to_int(n, "n"), K = to_int(k, "k"), BATCH = to_int(batch, "batch");
    int LDA = to_int(std::max<index_t>(lda, 1), "lda"), LDB = to_int(std::max<index_t>(ldb, 1), "ldb");
    int LDC = to_int(ldc, "ldc");
    auto ta = cuda_detail::op_of(trans_a), tb = cuda_detail::op_of(trans_b);
    long long sa = stride_a, sb = stride_b, sc = stride_c;
    if constexpr (std::is_same_v<T, float>)
      HYENA_CUBLAS_CHECK(cublasSgemmStridedBatched(ctx.cublas(), tb, ta, N, M, K, &alpha, b, LDB, sb, a, LDA, sa, &beta,
                                                   c, LDC, sc, BATCH));
    else
      HYENA_CUBLAS_CHECK(cublasDgemmStridedBatched(ctx.cublas(), tb, ta, N, M, K, &alpha, b, LDB, sb, a, LDA, sa, &beta,
                                                   c, LDC, sc, BATCH));
  }
};

}  // namespace hyena::backend
