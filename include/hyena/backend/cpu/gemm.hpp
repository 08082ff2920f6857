// cpu/gemm.hpp: matrix products through Eigen (packed, blocked, vectorized, threaded).
#pragma once
#include <Eigen/Core>

#include "../context.hpp"

namespace hyena::backend {

template <class Base>
struct cpu_gemm_ops : Base {
  template <class T>
  using matrix_map = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                                Eigen::OuterStride<>>;
  template <class T>
  using const_matrix_map = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                                      0, Eigen::OuterStride<>>;

  template <class T>
  static void gemm(host_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n, index_t k,
                   T alpha, const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c,
                   index_t ldc) {
    use_context_threads(ctx);
    matrix_map<T> C(c, m, n, Eigen::OuterStride<>(ldc));
    if (k == 0) {
      if (beta == T(0)) C.setZero(); else C *= beta;
      return;
    }
    // A stored as (m x k) or, transposed, as (k x m); likewise B.
    const_matrix_map<T> A(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
    const_matrix_map<T> B(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
    if (beta == T(0)) {
      C.setZero();
    } else if (beta != T(1)) {
      C *= beta;
    }
    if (!trans_a && !trans_b) C.noalias() += alpha * A * B;
    else if (trans_a && !trans_b) C.noalias() += alpha * A.transpose() * B;
    else if (!trans_a && trans_b) C.noalias() += alpha * A * B.transpose();
    else C.noalias() += alpha * A.transpose() * B.transpose();
  }

  // Eigen threads its products itself, from a process-wide setting: keep that setting at the
  // context's thread count (outside parallel regions, where Eigen runs single-threaded anyway).
  static void use_context_threads(host_context& ctx) {
#ifdef _OPENMP
    if (!omp_in_parallel() && Eigen::nbThreads() != ctx.threads()) Eigen::setNbThreads(ctx.threads());
#endif
  }

  template <class T>
  static void gemm_batched(host_context& ctx, bool trans_a, bool trans_b, index_t m, index_t n,
                           index_t k, T alpha, const T* a, index_t lda, index_t stride_a,
                           const T* b, index_t ldb, index_t stride_b, T beta, T* c, index_t ldc,
                           index_t stride_c, index_t batch) {
    // Threads over the batch; each product then runs on one thread.
#pragma omp parallel for schedule(static) num_threads(ctx.threads()) if (batch > 1)
    for (index_t i = 0; i < batch; ++i)
      gemm(ctx, trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
           beta, c + i * stride_c, ldc);
  }
};

}  // namespace hyena::backend
