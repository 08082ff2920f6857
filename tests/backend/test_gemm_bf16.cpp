// matmul_precision::medium (cpu/gemm_bf16.hpp): fp32 products with bf16-rounded inputs and fp32
// sums. Against a double reference over the inputs rounded to bf16 (round to nearest even), so
// a wrong pairing of depths, a lost pair at an odd depth or a dropped row or column shows as an
// fp32-sized error becoming a bf16-sized one. Every transpose, edge sizes around the 8 x 32 tile
// and the 256-deep blocks, bias, beta, the triangle hints, rows split and depth split among threads
// (fused attention's use is in test_attention_ops). Each check runs on every kernel the machine has:
// AMX tiles (cpu/gemm_amx.hpp) and vdpbf16ps. Where the build
// has no AVX512-BF16 the setting is a permission only and products must stay exactly fp32.
#include <doctest/doctest.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu/cpu.hpp>
#include <hyena/tensor/random.hpp>

using namespace hyena;
using backend::cpu;
using backend::cpu_ref;
using backend::matmul_precision;
using backend::triangle;

namespace {

// Round to nearest even to bf16's 8 significant bits (what vcvtne2ps2bf16 does to finite normal values).
float round_bf16(float x) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return std::bit_cast<float>(u & 0xFFFF0000u);
}

struct shape {
  bool ta, tb;
  index_t m, n, k;
};

// C = alpha op(A) op(B) + beta C (+ bias) under matmul_precision::medium against the double sum of
// the rounded inputs (or, without bf16 products, cpu_ref in fp32). Returns the largest error
// relative to the tolerance's scale, so a caller can also check the bf16 path ran.
double check_medium(const shape& s, float alpha, float beta, bool with_bias, int threads,
                    triangle tri = triangle::none) {
  rng r(s.m * 7919 + s.n * 104729 + s.k * 31 + s.ta * 2 + s.tb);
  const index_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n, ldc = s.n;
  std::vector<float> a(std::max<index_t>(1, s.m * s.k)), b(std::max<index_t>(1, s.k * s.n)), c0(s.m * s.n), bias(s.n);
  for (auto* v : {&a, &b, &c0, &bias})
    for (auto& x : *v) x = float(r.normal());
  // Under an a_lower / a_upper hint op(A) must be triangular: zero the other half.
  if (tri == triangle::a_lower || tri == triangle::a_upper)
    for (index_t i = 0; i < s.m; ++i)
      for (index_t p = 0; p < s.k; ++p)
        if (tri == triangle::a_lower ? p > i : p < i) a[s.ta ? p * lda + i : i * lda + p] = 0;
  if (beta == 0 && !with_bias)  // beta == 0 must not read C: poison it
    for (auto& x : c0) x = std::numeric_limits<float>::quiet_NaN();
  backend::host_context ctx(threads);
  ctx.set_float32_matmul_precision(matmul_precision::medium);
  std::vector<float> c = c0;
  if (with_bias) cpu::gemm_bias(ctx, s.ta, s.tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, bias.data(), c.data(), ldc);
  else cpu::gemm(ctx, s.ta, s.tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc, tri);
#if HYENA_HAS_BF16_PRODUCT
  const bool rounded = true;
#else
  const bool rounded = false;
#endif
  double worst = 0;
  int bad = 0;
  for (index_t i = 0; i < s.m; ++i)
    for (index_t j = 0; j < (tri == triangle::c_lower ? std::min(s.n, i + 1) : s.n); ++j) {
      double want = 0, scale = 0;
      for (index_t p = 0; p < s.k; ++p) {
        float x = s.ta ? a[p * lda + i] : a[i * lda + p], y = s.tb ? b[j * ldb + p] : b[p * ldb + j];
        if (rounded) x = round_bf16(x), y = round_bf16(y);
        want += double(x) * double(y);
        scale += std::abs(double(x) * double(y));
      }
      want *= with_bias ? 1.0 : alpha;
      if (with_bias) want += bias[j];
      else if (beta != 0) want += double(beta) * c0[i * ldc + j];
      const double err = std::abs(c[i * ldc + j] - want) / (1 + scale);
      worst = std::max(worst, err);
      bad += !(err <= 4e-7 * std::sqrt(double(s.k) + 1));
    }
  INFO("ta ", s.ta, " tb ", s.tb, " m ", s.m, " n ", s.n, " k ", s.k, " alpha ", alpha, " beta ", beta, " bias ",
       with_bias, " threads ", threads, " tri ", int(tri), " worst ", worst);
  CHECK(bad == 0);
  return worst;
}

// Runs `body` once on each bf16 kernel this machine can run: AMX tiles (gemm_amx.hpp) where the
// build and the OS allow them, and vdpbf16ps (gemm_bf16.hpp), with AMX switched off.
template <class F>
void for_each_kernel(F&& body) {
#if HYENA_HAS_AMX
  auto& amx = backend::gemm_detail::amx_enabled();
  if (backend::gemm_detail::amx_permitted()) {
    INFO("kernel: AMX");
    body();
  }
  struct restore {
    std::atomic<bool>& on;
    ~restore() { on = true; }
  } guard{amx};
  amx = false;
#endif
  INFO("kernel: vdpbf16ps (or fp32 without AVX512-BF16)");
  body();
}

}  // namespace

TEST_CASE("matmul_precision::medium: bf16 inputs, fp32 sums, for every transpose and edge size") {
  for_each_kernel([] {
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (index_t m : {1, 7, 8, 9, 17, 33, 64, 130})  // around the 8-row and the AMX 16- and 32-row tiles
          for (index_t n : {1, 15, 32, 33, 70})
            for (index_t k : {1, 2, 3, 31, 33, 257, 300}) {  // odd depths, and depths past one 256-deep block
              check_medium({ta, tb, m, n, k}, 1.0f, 0.0f, false, 1);
              check_medium({ta, tb, m, n, k}, 0.5f, 1.0f, false, 2);
            }
  });
}

TEST_CASE("matmul_precision::medium: a linear layer's bias, rows split, and the depth split of weight gradients") {
  for_each_kernel([] {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check_medium({ta, tb, 33, 70, 300}, 1.0f, 0.0f, true, 1);
        check_medium({ta, tb, 40, 70, 1100}, 1.0f, 0.0f, false, 2);   // split by depth, beta 0: C never read
        check_medium({ta, tb, 40, 130, 2001}, 1.0f, 0.25f, false, 3);  // three partial sums, an odd depth
        check_medium({ta, tb, 40, 70, 1100}, 1.0f, 1.0f, false, 1);   // one thread, block by block
      }
    check_medium({false, true, 1000, 384, 128}, 1.0f, 0.0f, true, 2);  // the qkv forward's shape
  });
}

TEST_CASE("matmul_precision::medium: the triangle hints (attention's products), odd depths and diagonals") {
  for_each_kernel([] {
    for (bool ta : {false, true})
      for (index_t m : {9, 33, 70})
        for (index_t k : {1, 9, 33, 70, 301})
          for (triangle tri : {triangle::c_lower, triangle::a_lower, triangle::a_upper}) {
            const index_t n = tri == triangle::c_lower ? m : 40;  // c_lower: a square of scores
            check_medium({ta, false, m, n, k}, 1.0f, 0.0f, false, 1, tri);
            check_medium({ta, true, m, n, k}, 0.5f, 1.0f, false, 2, tri);
          }
  });
}

TEST_CASE("matmul_precision::medium: gemm_batched (one product per thread) equals gemm product by product") {
  const index_t m = 70, n = 40, k = 70, batch = 3;
  rng r(9);
  std::vector<float> a(batch * m * k), b(batch * k * n);
  for (auto* v : {&a, &b})
    for (auto& x : *v) x = float(r.normal());
  for (index_t i = 0; i < batch * m; ++i)  // lower triangular: valid under every hint but a_upper
    for (index_t p = i % m + 1; p < k; ++p) a[i * k + p] = 0;
  backend::host_context ctx(2);
  ctx.set_float32_matmul_precision(matmul_precision::medium);
  for_each_kernel([&] {
  for (triangle tri : {triangle::none, triangle::c_lower, triangle::a_lower}) {
    std::vector<float> batched(batch * m * n, 0.0f), one(batch * m * n, 0.0f), fp32(batch * m * n, 0.0f);
    cpu::gemm_batched(ctx, false, false, m, n, k, 1.0f, a.data(), k, m * k, b.data(), n, k * n, 0.0f, batched.data(),
                      n, m * n, batch, tri);
    for (index_t i = 0; i < batch; ++i)
      cpu::gemm(ctx, false, false, m, n, k, 1.0f, a.data() + i * m * k, k, b.data() + i * k * n, n, 0.0f,
                one.data() + i * m * n, n, tri);
    backend::host_context plain(2);
    cpu::gemm_batched(plain, false, false, m, n, k, 1.0f, a.data(), k, m * k, b.data(), n, k * n, 0.0f, fp32.data(),
                      n, m * n, batch, tri);
    INFO("tri ", int(tri));
    CHECK(batched == one);
#if HYENA_HAS_BF16_PRODUCT
    CHECK(batched != fp32);
#else
    CHECK(batched == fp32);
#endif
  }
  });
}

TEST_CASE("matmul_precision::medium rounds where bf16 products exist; highest stays fp32") {
  const index_t m = 64, n = 64, k = 256;
  rng r(3);
  std::vector<float> a(m * k), b(k * n);
  for (auto* v : {&a, &b})
    for (auto& x : *v) x = float(r.normal());
  backend::host_context ref_ctx(1), ctx(2);
  auto run = [&](matmul_precision p, triangle tri) {
    ctx.set_float32_matmul_precision(p);
    std::vector<float> c(m * n, 0.0f);
    cpu::gemm(ctx, false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n, tri);
    return c;
  };
  std::vector<float> want(m * n, 0.0f);
  cpu_ref::gemm(ref_ctx, false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, want.data(), n);
  const auto fp32 = run(matmul_precision::highest, triangle::none), medium = run(matmul_precision::medium, triangle::none);
  double fp32_err = 0, medium_err = 0;
  for (index_t i = 0; i < m * n; ++i) {
    fp32_err = std::max(fp32_err, double(std::abs(fp32[i] - want[i])));
    medium_err = std::max(medium_err, double(std::abs(medium[i] - want[i])));
  }
  CHECK(fp32_err < 1e-4);
#if HYENA_HAS_BF16_PRODUCT
  CHECK(medium_err > 1e-3);  // bf16 inputs: about 2^-9 relative per input, over 256 terms of size 1
  CHECK(medium_err < 0.5);
#if HYENA_HAS_AMX
  if (backend::gemm_detail::amx_permitted()) {  // the switch picks another kernel: other sums, other last bits
    backend::gemm_detail::amx_enabled() = false;
    const auto dpbf16 = run(matmul_precision::medium, triangle::none);
    backend::gemm_detail::amx_enabled() = true;
    CHECK(dpbf16 != medium);
  }
#endif
#else
  CHECK(medium_err < 1e-4);
#endif
}
