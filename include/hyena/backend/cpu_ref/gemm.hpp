// cpu_ref/gemm.hpp: row-major matrix products as plain triple loops (the oracle).
#pragma once
#include "../context.hpp"
#include "../triangle.hpp"

namespace hyena::backend {

struct ref_gemm_ops {
  // C = alpha * op(A) * op(B) + beta * C, all row-major; op(X) = X or X^T.
  // op(A) is m x k, op(B) is k x n, C is m x n. With beta == 0, C is never read
  // (so it may hold garbage or NaN). `tri` (triangle.hpp): the oracle computes every entry
  // of C but, as a fast backend may, leaves out the terms a triangular op(A) has as zeros.
  template <class T>
  static void gemm(host_context&, bool trans_a, bool trans_b, index_t m, index_t n, index_t k,
                   T alpha, const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c,
                   index_t ldc, triangle tri = triangle::none) {
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) {
        T acc = 0;
        for (index_t p = 0; p < k; ++p) {
          if ((tri == triangle::a_lower && p > i) || (tri == triangle::a_upper && p < i)) continue;
          T av = trans_a ? a[p * lda + i] : a[i * lda + p];
          T bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
          acc += av * bv;
        }
        T& out = c[i * ldc + j];
        out = beta == T(0) ? alpha * acc : alpha * acc + beta * out;
      }
  }

  // C = op(A) * op(B) + bias, the bias (n values) added to every row of C (m x n): a linear
  // layer's forward, x W^T + b (PyTorch's addmm with a broadcast bias; cuBLASLt's BIAS epilogue).
  // C is never read.
  template <class T>
  static void gemm_bias(host_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const T* a,
                        index_t lda, const T* b, index_t ldb, const T* bias, T* c, index_t ldc) {
    gemm(ctx, trans_a, trans_b, m, n, k, T(1), a, lda, b, ldb, T(0), c, ldc);
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) c[i * ldc + j] += bias[j];
  }

  // `batch` independent products; matrix i starts at a + i*stride_a (and so on).
  // A stride of 0 shares one matrix across the batch (grouped-query attention).
  template <class T>
  static void gemm_batched(host_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n,
                           index_t k, T alpha, const T* a, index_t lda, index_t stride_a,
                           const T* b, index_t ldb, index_t stride_b, T beta, T* c, index_t ldc,
                           index_t stride_c, index_t batch, triangle tri = triangle::none) {
    for (index_t i = 0; i < batch; ++i)
      gemm(ctx, trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
           beta, c + i * stride_c, ldc, tri);
  }
};

}  // namespace hyena::backend
