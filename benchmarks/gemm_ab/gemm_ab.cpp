// gemm_ab: two versions of cpu/gemm_kernel.hpp in one binary (namespaces gemm_a and gemm_b,
// written by gemm_ab.py), timed call by call in alternation on one thread. On a noisy VM this
// resolves differences of a few percent that separate runs of bench_gemm cannot.
//   gemm_ab M N K TRANS_A TRANS_B [ROUNDS]
// Prints: GFLOP/s of A, GFLOP/s of B (medians), median over rounds of time(A) / time(B).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <hyena/hyena.hpp>

#include "variant_a.hpp"
#include "variant_b.hpp"

using namespace hyena;
using backend::triangle;

namespace {

template <class F>
double seconds(F f, long calls) {
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < calls; ++i) f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

// One single-threaded product with version NS (what cpu::gemm does on one thread).
#define HYENA_AB_PRODUCT(NS)                                                                          \
  [&] {                                                                                               \
    const auto A = backend::NS::operand<float>::of(a.data(), lda, ta);                                \
    const auto B = backend::NS::operand<float>::of(b.data(), ldb, tb);                                \
    const index_t nr = backend::NS::tile<float>::nr;                                                  \
    backend::NS::pack_b(B, k, n, 0, (n + nr - 1) / nr, packed.data());                                \
    backend::NS::multiply_rows(triangle::none, 0, m, n, k, 1.0f, A, packed.data(), k, 0.0f, c.data(), \
                               n, apack.data());                                                      \
  }

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: gemm_ab M N K TRANS_A TRANS_B [ROUNDS]\n");
    return 1;
  }
  const index_t m = std::atol(argv[1]), n = std::atol(argv[2]), k = std::atol(argv[3]);
  const bool ta = argv[4][0] == '1', tb = argv[5][0] == '1';
  const int rounds = argc > 6 ? std::atoi(argv[6]) : 30;
  std::vector<float> a(m * k), b(k * n), c(m * n);
  rng r(1);
  for (auto& x : a) x = float(r.normal());
  for (auto& x : b) x = float(r.normal());
  const index_t lda = ta ? m : k, ldb = tb ? k : n;
  // One set of buffers for both, so that their placement in memory cannot favour one; sized
  // for the larger block either version may use.
  backend::gemm_a::aligned_vector<float> packed(backend::gemm_a::packed_size<float>(k, n) + 64), apack(1 << 20);
  const auto run_a = HYENA_AB_PRODUCT(gemm_a);
  const auto run_b = HYENA_AB_PRODUCT(gemm_b);
  const long calls = std::max<long>(1, long(1e7 / (2.0 * m * n * k)));  // about 10 MFLOP per timing
  std::vector<double> time_a, time_b, ratio;
  for (int i = 0; i < rounds; ++i) {  // alternate which goes first
    double x, y;
    if (i % 2 == 0) x = seconds(run_a, calls), y = seconds(run_b, calls);
    else y = seconds(run_b, calls), x = seconds(run_a, calls);
    time_a.push_back(x), time_b.push_back(y), ratio.push_back(x / y);
  }
  const double gflop = 2.0 * double(m) * double(n) * double(k) * double(calls) * 1e-9;
  std::printf("%.1f %.1f %.3f\n", gflop / median(time_a), gflop / median(time_b), median(ratio));
  return 0;
}
