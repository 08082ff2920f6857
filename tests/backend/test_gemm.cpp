// The gemm op group: the cpu backend's blocked kernel against the reference triple loop, for
// every transpose combination, edge sizes around the tile and block sizes, padded leading
// dimensions, alpha/beta, one and two threads, batches, and the triangle hints.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu/cpu.hpp>
#include <hyena/tensor/random.hpp>

using namespace hyena;
using backend::cpu;
using backend::cpu_ref;
using backend::triangle;

namespace {

template <class T>
std::vector<T> randn(index_t n, rng& r) {
  std::vector<T> v(n);
  for (auto& x : v) x = T(r.normal());
  return v;
}

struct product {
  bool ta, tb;
  index_t m, n, k, pad;  // pad: extra columns in every leading dimension
};

// Compares C entries (all, or only j <= i for c_lower) of cpu against cpu_ref.
template <class T>
void check_product(const product& s, double alpha, double beta, triangle tri, int threads, index_t batch = 1,
                   bool share_b = false) {
  rng r(s.m * 1000003 + s.n * 1009 + s.k * 7 + s.ta * 2 + s.tb);
  const index_t lda = (s.ta ? s.m : s.k) + s.pad, ldb = (s.tb ? s.k : s.n) + s.pad, ldc = s.n + s.pad;
  const index_t size_a = (s.ta ? s.k : s.m) * lda, size_b = (s.tb ? s.n : s.k) * ldb, size_c = s.m * ldc;
  auto a = randn<T>(size_a * batch, r), b = randn<T>(size_b * batch, r), c0 = randn<T>(size_c * batch, r);
  // Under an a_lower / a_upper hint op(A) must be triangular: zero the other half.
  for (index_t q = 0; q < batch && (tri == triangle::a_lower || tri == triangle::a_upper); ++q)
    for (index_t i = 0; i < s.m; ++i)
      for (index_t p = 0; p < s.k; ++p)
        if (tri == triangle::a_lower ? p > i : p < i) a[q * size_a + (s.ta ? p * lda + i : i * lda + p)] = 0;
  if (beta == 0)  // beta == 0 must not read C: poison it
    for (auto& x : c0) x = std::numeric_limits<T>::quiet_NaN();
  auto c_ref = c0, c_fast = c0;
  backend::host_context ref_ctx(1), ctx(threads);
  const index_t sb = share_b ? 0 : size_b;
  cpu_ref::gemm_batched(ref_ctx, s.ta, s.tb, s.m, s.n, s.k, T(alpha), a.data(), lda, size_a, b.data(), ldb, sb,
                        T(beta), c_ref.data(), ldc, size_c, batch, tri);
  cpu::gemm_batched(ctx, s.ta, s.tb, s.m, s.n, s.k, T(alpha), a.data(), lda, size_a, b.data(), ldb, sb, T(beta),
                    c_fast.data(), ldc, size_c, batch, tri);
  const double tol = (std::is_same_v<T, float> ? 2e-6 : 1e-13) * std::sqrt(double(s.k) + 1);
  int bad = 0;
  for (index_t q = 0; q < batch; ++q)
    for (index_t i = 0; i < s.m; ++i)
      for (index_t j = 0; j < ldc; ++j) {
        const index_t at = q * size_c + i * ldc + j;
        if (j >= s.n) {  // padding columns are never written
          bad += !(std::isnan(c_fast[at]) && std::isnan(c0[at])) && c_fast[at] != c0[at];
          continue;
        }
        if (tri == triangle::c_lower && j > i) continue;
        const double want = c_ref[at], got = c_fast[at];
        bad += !(std::abs(got - want) <= tol * (1 + std::abs(want)));
      }
  INFO("ta ", s.ta, " tb ", s.tb, " m ", s.m, " n ", s.n, " k ", s.k, " pad ", s.pad, " alpha ", alpha, " beta ", beta,
       " tri ", int(tri), " threads ", threads, " batch ", batch);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("gemm: cpu equals cpu_ref for every transpose, edge sizes, alpha and beta") {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (index_t m : {1, 7, 8, 9, 33, 130})
        for (index_t n : {1, 15, 32, 33, 70, 130})  // 130: 9 panels, where A in rows is packed too
          for (index_t k : {1, 5, 64, 300}) {
            check_product<float>({ta, tb, m, n, k, 0}, 1.0, 0.0, triangle::none, 1);
            check_product<float>({ta, tb, m, n, k, 3}, 0.5, 1.0, triangle::none, 2);
          }
}

TEST_CASE("gemm: beta scales C, k == 0 leaves beta * C, double precision") {
  check_product<float>({false, true, 37, 41, 600, 1}, -1.5, 0.25, triangle::none, 2);
  check_product<float>({true, false, 20, 20, 0, 0}, 1.0, 0.5, triangle::none, 1);
  check_product<float>({true, false, 20, 20, 0, 0}, 1.0, 0.0, triangle::none, 1);
  check_product<double>({false, false, 45, 50, 270, 2}, 1.0, 0.0, triangle::none, 2);
  check_product<double>({true, true, 45, 50, 270, 0}, 2.0, 1.0, triangle::none, 1);
}

TEST_CASE("gemm: a tall product split across threads (more rows than one block)") {
  check_product<float>({false, true, 1000, 96, 128, 0}, 1.0, 0.0, triangle::none, 2);
  check_product<float>({true, false, 96, 130, 1000, 0}, 1.0, 1.0, triangle::none, 2);
}

TEST_CASE("gemm_batched: batches, a shared B, and the triangle hints") {
  for (int threads : {1, 2}) {
    check_product<float>({false, true, 40, 24, 16, 0}, 1.0, 0.0, triangle::none, threads, 5);
    check_product<float>({false, true, 40, 24, 16, 0}, 1.0, 1.0, triangle::none, threads, 3, true);
    for (triangle tri : {triangle::c_lower, triangle::a_lower, triangle::a_upper})
      for (index_t L : {1, 9, 70, 300}) {
        // attention's shapes: scores (L x L over depth D), and products over the L keys
        check_product<float>({false, true, L, L, 24, 0}, 1.0, 0.0, tri, threads, 3);
        check_product<float>({false, false, L, 24, L, 0}, 1.0, 0.0, tri, threads, 2);
        check_product<float>({true, false, L, 24, L, 0}, 1.0, 1.0, tri, threads, 2);
      }
  }
}

TEST_CASE("gemm: a triangular A gives the full product under its hint") {
  // The reference computes the full product here (no hint); the fast path skips the zeros.
  const index_t L = 77, D = 20;
  rng r(5);
  auto p = randn<float>(L * L, r), v = randn<float>(L * D, r);
  for (index_t i = 0; i < L; ++i)
    for (index_t j = i + 1; j < L; ++j) p[i * L + j] = 0;  // lower triangular, like softmax probabilities
  std::vector<float> full(L * D), lower(L * D), upper(L * D), full_t(L * D);
  backend::host_context ctx(1);
  cpu_ref::gemm(ctx, false, false, L, D, L, 1.0f, p.data(), L, v.data(), D, 0.0f, full.data(), D);
  cpu::gemm(ctx, false, false, L, D, L, 1.0f, p.data(), L, v.data(), D, 0.0f, lower.data(), D, triangle::a_lower);
  cpu_ref::gemm(ctx, true, false, L, D, L, 1.0f, p.data(), L, v.data(), D, 0.0f, full_t.data(), D);
  cpu::gemm(ctx, true, false, L, D, L, 1.0f, p.data(), L, v.data(), D, 0.0f, upper.data(), D, triangle::a_upper);
  for (index_t i = 0; i < L * D; ++i) {
    CHECK(lower[i] == doctest::Approx(full[i]).epsilon(1e-5));
    CHECK(upper[i] == doctest::Approx(full_t[i]).epsilon(1e-5));
  }
}

namespace {
// gemm_bias (C = op(A) op(B) + bias on every row) of cpu against cpu_ref. C starts as NaN:
// it must never be read, and its padding columns never written.
template <class T>
void check_bias_product(const product& s, int threads) {
  rng r(s.m * 7919 + s.n * 31 + s.k + s.ta * 2 + s.tb);
  const index_t lda = (s.ta ? s.m : s.k) + s.pad, ldb = (s.tb ? s.k : s.n) + s.pad, ldc = s.n + s.pad;
  auto a = randn<T>((s.ta ? s.k : s.m) * lda, r), b = randn<T>((s.tb ? s.n : s.k) * ldb, r), bias = randn<T>(s.n, r);
  for (auto& x : bias) x *= T(10);  // a bias added twice or not at all stands out
  std::vector<T> c_ref(s.m * ldc, std::numeric_limits<T>::quiet_NaN()), c_fast = c_ref;
  backend::host_context ref_ctx(1), ctx(threads);
  cpu_ref::gemm_bias(ref_ctx, s.ta, s.tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, bias.data(), c_ref.data(), ldc);
  cpu::gemm_bias(ctx, s.ta, s.tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, bias.data(), c_fast.data(), ldc);
  const double tol = (std::is_same_v<T, float> ? 2e-6 : 1e-13) * std::sqrt(double(s.k) + 1);
  int bad = 0;
  for (index_t i = 0; i < s.m; ++i)
    for (index_t j = 0; j < ldc; ++j) {
      const double want = c_ref[i * ldc + j], got = c_fast[i * ldc + j];
      if (j >= s.n) bad += !std::isnan(got);
      else bad += !(std::abs(got - want) <= tol * (1 + std::abs(want)));
    }
  INFO("ta ", s.ta, " tb ", s.tb, " m ", s.m, " n ", s.n, " k ", s.k, " pad ", s.pad, " threads ", threads);
  CHECK(bad == 0);
}
}  // namespace

TEST_CASE("gemm_bias: the bias is added once to every row, whatever the tiles and depth passes") {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (index_t m : {1, 7, 33, 130})
        for (index_t n : {1, 15, 33, 130})
          for (index_t k : {0, 1, 64, 300}) {  // 0: C = bias; 300: two passes over the depth
            check_bias_product<float>({ta, tb, m, n, k, 0}, 1);
            check_bias_product<float>({ta, tb, m, n, k, 3}, 2);
          }
  check_bias_product<float>({false, true, 1000, 384, 128, 0}, 2);  // a linear layer's shape, rows split
  check_bias_product<double>({false, true, 45, 50, 270, 2}, 2);
}

TEST_CASE("gemm: a long depth split among threads (weight gradients), partial sums added into C") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_product<float>({ta, tb, 40, 70, 1100, 0}, 1.0, 0.0, triangle::none, 2);   // beta 0: C never read
      check_product<float>({ta, tb, 40, 70, 1100, 3}, 0.5, 1.0, triangle::none, 2);   // accumulating, padded
      check_product<float>({ta, tb, 40, 130, 2000, 1}, 1.0, 0.25, triangle::none, 3);  // three partial sums
    }
  // The qkv weight gradient's shape, in double: in float, the reference's own sequential sum over
  // 2048 terms strays past the tolerance on an entry or two near zero.
  check_product<double>({true, false, 384, 128, 2048, 0}, 1.0, 1.0, triangle::none, 2);
  check_product<double>({true, false, 45, 50, 1500, 2}, 1.0, 0.0, triangle::none, 2);
  // One thread goes block by block too (beta on the first block only).
  for (bool ta : {false, true})
    for (bool tb : {false, true}) check_product<double>({ta, tb, 40, 70, 1100, 2}, 1.0, 0.25, triangle::none, 1);
}

TEST_CASE("gemm: a split depth's partial sums start afresh on every call (the buffers are reused)") {
  rng r(5);
  const index_t m = 30, n = 40, k = 1500;
  backend::host_context ref_ctx(1), ctx(2);
  std::vector<float> c_ref = randn<float>(m * n, r), c_fast = c_ref;
  for (int call = 0; call < 3; ++call) {  // C += A^T B three times, as weight gradients accumulate
    auto a = randn<float>(k * m, r), b = randn<float>(k * n, r);
    cpu_ref::gemm(ref_ctx, true, false, m, n, k, 1.0f, a.data(), m, b.data(), n, 1.0f, c_ref.data(), n);
    cpu::gemm(ctx, true, false, m, n, k, 1.0f, a.data(), m, b.data(), n, 1.0f, c_fast.data(), n);
  }
  int bad = 0;
  for (index_t i = 0; i < m * n; ++i) bad += !(std::abs(c_fast[i] - c_ref[i]) <= 1e-4 * (1 + std::abs(c_ref[i])));
  CHECK(bad == 0);
}

TEST_CASE("gemm: a product split by rows gives the same bits on any number of threads") {
  // Each row is one thread's whole work, whichever thread takes it: one, two and three threads
  // must agree bit for bit, in fp32 and with bf16 products. C starts as NaN, so a row dealt to
  // no thread shows too. Under a triangle, blocks of rows are dealt in turn.
  rng r(11);
  struct shape {
    index_t m, n, k;
    triangle tri;
  };
  for (const shape s : {shape{1000, 130, 70, triangle::none}, shape{333, 96, 200, triangle::none},
                        shape{300, 300, 40, triangle::c_lower}}) {
    const index_t m = s.m, n = s.n, k = s.k;
    const triangle tri = s.tri;
    auto a = randn<float>(m * k, r), b = randn<float>(k * n, r), bias = randn<float>(n, r);
    const auto run = [&](int threads, backend::matmul_precision p) {
      backend::host_context ctx(threads);
      ctx.set_float32_matmul_precision(p);
      std::vector<float> c(m * n, std::numeric_limits<float>::quiet_NaN());
      if (tri == triangle::none)
        cpu::gemm_bias(ctx, false, false, m, n, k, a.data(), k, b.data(), n, bias.data(), c.data(), n);
      else
        cpu::gemm(ctx, false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n, tri);
      if (tri == triangle::c_lower)  // above the diagonal C is unspecified
        for (index_t i = 0; i < m; ++i) std::fill(c.begin() + i * n + std::min(n, i + 1), c.begin() + (i + 1) * n, 0.0f);
      return c;
    };
    for (auto p : {backend::matmul_precision::highest, backend::matmul_precision::medium}) {
      const auto one = run(1, p);
      int nans = 0;
      for (float x : one) nans += std::isnan(x);
      CHECK(nans == 0);
      for (int threads : {2, 3, 2, 3}) {
        INFO("m ", m, " n ", n, " k ", k, " threads ", threads, " precision ", int(p));
        CHECK(std::memcmp(run(threads, p).data(), one.data(), one.size() * sizeof(float)) == 0);
      }
    }
  }
}
