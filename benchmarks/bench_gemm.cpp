// bench_gemm: the machine's fp32 FMA peak, and how close the cpu backend's matrix products
// get to it on the shapes the models use (forward, input-gradient and weight-gradient
// products of the linear layers; attention's per-head products with their triangle hints),
// side by side with Eigen's product on the same shapes.
//   bench_gemm [--threads N] [--tokens 2048] [--width 128] [--seq 256] [--matmul-precision medium] [--peak-only]
// Prints markdown tables (docs/results.md section 5), the last two a linear layer's forward with and
// without its bias fused into the product, and products whose output starts out of cache, as in a
// training step, beside the same with everything in cache; --peak-only prints just the peak as one
// JSON line (with bf16_peak_gflops where the build has bf16 products: AMX tiles' where they run, else vdpbf16ps's).
// --matmul-precision medium runs our products with bf16 inputs and fp32 sums (cpu/gemm_bf16.hpp),
// where the "% of peak" column is still against the fp32 FMA peak (vdpbf16ps's is twice it on Zen 4;
// AMX's, where medium runs on AMX tiles, is about 15 times it: --peak-only prints both).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <xsimd/xsimd.hpp>

#include <hyena/hyena.hpp>

#include "bench_util.hpp"

using namespace hyena;

namespace {

// The best of three FLOP/s readings of `threads` threads each running chains(): one thread's
// independent chains of `flops` FLOP in registers, no memory traffic, returning a sum of its
// results so that none is optimised away.
template <class Chains>
double best_rate(int threads, double flops, Chains&& chains) {
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    float sink = 0;
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += chains();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops * threads / s);
    if (sink == 42.0f) std::printf(" ");  // keeps the loops alive
  }
  return best;
}

// FLOP/s of 12 independent FMA chains per thread (enough to cover the FMA latency on every
// current x86 core).
double fma_peak(int threads) {
  using batch = xsimd::batch<float>;
  const long iters = 50'000'000 / long(batch::size);
  return best_rate(threads, 2.0 * 12 * double(batch::size) * double(iters), [&] {
    batch acc[12];
    for (int j = 0; j < 12; ++j) acc[j] = batch(1.0f + float(j) * 1e-7f);
    const batch m(0.9999999f), a(1e-7f);
    for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 12
      for (int j = 0; j < 12; ++j) acc[j] = xsimd::fma(acc[j], m, a);
#if defined(__x86_64__)
      // An empty asm that "may change" the registers: the compiler must run every FMA.
      for (int j = 0; j < 12; ++j) {
        auto reg = static_cast<typename batch::register_type>(acc[j]);
        asm volatile("" : "+x"(reg));
        acc[j] = batch(reg);
      }
#endif
    }
    float sum = 0;
    for (int j = 0; j < 12; ++j) sum += xsimd::hadd(acc[j]);
    return sum;
  });
}

#if HYENA_HAS_BF16_PRODUCT
// The same for bf16 dot products (vdpbf16ps, what matmul_precision::medium runs): 12 chains, each
// instruction 4 FLOP per fp32 lane (two products and their sum, added to the lane).
double bf16_peak(int threads) {
  const long iters = 50'000'000 / 16;
  return best_rate(threads, 4.0 * 12 * 16 * double(iters), [&] {
    __m512 acc[12];
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_set1_ps(1.0f + float(j) * 1e-7f);
    const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
    for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 12
      for (int j = 0; j < 12; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], x, x);  // (no constant folding of these)
    }
    alignas(64) float lanes[16];
    float sum = 0;
    for (int j = 0; j < 12; ++j) {
      _mm512_store_ps(lanes, acc[j]);
      for (float v : lanes) sum += v;
    }
    return sum;
  });
}
#endif

#if HYENA_HAS_AMX
// The same for AMX tiles (tdpbf16ps, what medium runs on where the CPU has them: cpu/gemm_amx.hpp):
// six chains, C tiles 0-5 accumulating tile 6 times tile 7, each instruction 16 x 16 x 32 multiply-adds.
double amx_peak(int threads) {
  const long iters = 2'000'000;
  return best_rate(threads, 2.0 * 16 * 16 * 32 * 6 * double(iters), [&] {
    const backend::gemm_detail::tile_config config;
    _tile_loadconfig(&config);
    alignas(64) std::uint16_t ones[16 * 32];
    std::fill(ones, ones + 16 * 32, std::uint16_t(0x3A83));  // bf16 1e-3: sums stay small
    _tile_loadd(6, ones, 64);
    _tile_loadd(7, ones, 64);
    _tile_zero(0);  // (macros: one statement each)
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_zero(4);
    _tile_zero(5);
    for (long i = 0; i < iters; ++i) {
      _tile_dpbf16ps(0, 6, 7);
      _tile_dpbf16ps(1, 6, 7);
      _tile_dpbf16ps(2, 6, 7);
      _tile_dpbf16ps(3, 6, 7);
      _tile_dpbf16ps(4, 6, 7);
      _tile_dpbf16ps(5, 6, 7);
    }
    alignas(64) float c[16 * 16];
    _tile_stored(0, c, 64);
    _tile_release();
    return c[0];
  });
}
#endif

struct product {
  const char* what;
  bool ta, tb;
  index_t m, n, k, batch;
  backend::triangle tri;
};

// Seconds per call of ours and of Eigen's product (Eigen ignores the triangle: full work).
std::pair<double, double> time_product(backend::host_context& ctx, const product& p) {
  const index_t sa = p.m * p.k, sb = p.k * p.n, sc = p.m * p.n;
  std::vector<float> a(sa * p.batch), b(sb * p.batch), c(sc * p.batch);
  rng r(1);
  for (auto& x : a) x = float(r.normal());
  for (auto& x : b) x = float(r.normal());
  const index_t lda = p.ta ? p.m : p.k, ldb = p.tb ? p.k : p.n;
  auto ours = [&] {
    backend::cpu::gemm_batched(ctx, p.ta, p.tb, p.m, p.n, p.k, 1.0f, a.data(), lda, sa, b.data(), ldb, sb, 0.0f,
                               c.data(), p.n, sc, p.batch, p.tri);
  };
  using mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::setNbThreads(ctx.threads());
  auto eigen = [&] {
    for (index_t i = 0; i < p.batch; ++i) {
      Eigen::Map<const mat> A(a.data() + i * sa, p.ta ? p.k : p.m, p.ta ? p.m : p.k);
      Eigen::Map<const mat> B(b.data() + i * sb, p.tb ? p.n : p.k, p.tb ? p.k : p.n);
      Eigen::Map<mat> C(c.data() + i * sc, p.m, p.n);
      if (p.ta && p.tb) C.noalias() = A.transpose() * B.transpose();
      else if (p.ta) C.noalias() = A.transpose() * B;
      else if (p.tb) C.noalias() = A * B.transpose();
      else C.noalias() = A * B;
    }
  };
  const double t_ours = bench::median_seconds(bench::reps_for(bench::median_seconds(1, ours), 1.0, 3, 50), ours);
  const double t_eigen = bench::median_seconds(bench::reps_for(bench::median_seconds(1, eigen), 1.0, 3, 50), eigen);
  return {t_ours, t_eigen};
}

// A linear layer's forward, x W^T + b: the product then add_bias's pass over C, against
// gemm_bias (the bias added while each tile of C is in registers). The two alternate call by
// call, so the machine's drift falls on both alike.
void print_bias_table(backend::host_context& ctx, index_t tokens, index_t w, index_t mlp) {
  std::printf("\n### A linear layer's forward with its bias: gemm + add_bias against gemm_bias (%d threads)\n\n",
              ctx.threads());
  std::printf("| layer | rows x out x in | gemm + add_bias ms | gemm_bias ms | ratio |\n|---|---|---|---|---|\n");
  struct shape {
    const char* what;
    index_t out, in;
  };
  for (const shape s : {shape{"qkv", 3 * w, w}, shape{"MLP up", mlp, w}, shape{"MLP down", w, mlp}}) {
    std::vector<float> x(tokens * s.in), wt(s.out * s.in), bias(s.out), y(tokens * s.out);
    rng r(2);
    for (auto* v : {&x, &wt, &bias})
      for (auto& e : *v) e = float(r.normal());
    const auto two_passes = [&] {
      backend::cpu::gemm(ctx, false, true, tokens, s.out, s.in, 1.0f, x.data(), s.in, wt.data(), s.in, 0.0f, y.data(),
                         s.out);
      backend::cpu::add_bias(ctx, tokens, s.out, bias.data(), y.data());
    };
    const auto fused = [&] {
      backend::cpu::gemm_bias(ctx, false, true, tokens, s.out, s.in, x.data(), s.in, wt.data(), s.in, bias.data(),
                              y.data(), s.out);
    };
    std::vector<double> t_two, t_fused;
    for (int rep = 0; rep < 100; ++rep) {
      t_two.push_back(bench::median_seconds(1, two_passes));
      t_fused.push_back(bench::median_seconds(1, fused));
    }
    std::sort(t_two.begin(), t_two.end());
    std::sort(t_fused.begin(), t_fused.end());
    const double a = t_two[t_two.size() / 2], b = t_fused[t_fused.size() / 2];
    std::printf("| %s | %lldx%lldx%lld | %.3f | %.3f | %.2fx |\n", s.what, (long long)tokens, (long long)s.out,
                (long long)s.in, a * 1e3, b * 1e3, a / b);
  }
}

// A linear layer's products as a training step meets them: C is a buffer nothing has touched
// since the previous step, out of every cache, while A was just written by the op before. Before
// each call 64 MB are written (more than this kind of machine's L3) and then A is read again;
// the same product with everything in cache alternates with it, call by call. Medians of 60.
void print_cold_output_table(backend::host_context& ctx, index_t tokens, index_t w, index_t mlp) {
  std::printf("\n### Products whose output starts out of cache, as in a training step (%d threads)\n\n",
              ctx.threads());
  std::printf("| product | m x n x k | C in cache GFLOP/s | C out of cache GFLOP/s | ratio |\n"
              "|---|---|---|---|---|\n");
  std::vector<float> evict(std::size_t(64) << 18);
  float sink = 0;
  struct shape {
    const char* what;
    bool ta, tb;
    index_t m, n, k;
  };
  for (const shape s : {shape{"qkv forward", false, true, tokens, 3 * w, w},
                        shape{"MLP up forward", false, true, tokens, mlp, w},
                        shape{"MLP down forward", false, true, tokens, w, mlp},
                        shape{"MLP up weight grad", true, false, mlp, w, tokens}}) {
    std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
    rng r(3);
    for (auto* v : {&a, &b})
      for (auto& e : *v) e = float(r.normal());
    const auto run = [&] {
      backend::cpu::gemm(ctx, s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), s.ta ? s.m : s.k, b.data(), s.tb ? s.k : s.n,
                         0.0f, c.data(), s.n);
    };
    std::vector<double> warm, cold;
    for (int rep = 0; rep < 60; ++rep) {
      warm.push_back(bench::median_seconds(1, run));
      for (auto& e : evict) e += 1.0f;
      for (float e : a) sink += e;
      const auto t0 = std::chrono::steady_clock::now();
      run();
      cold.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(warm.begin(), warm.end());
    std::sort(cold.begin(), cold.end());
    const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k), tw = warm[warm.size() / 2],
                 tc = cold[cold.size() / 2];
    std::printf("| %s | %lldx%lldx%lld | %.1f | %.1f | %.2f |\n", s.what, (long long)s.m, (long long)s.n,
                (long long)s.k, flops / tw * 1e-9, flops / tc * 1e-9, tw / tc);
  }
  if (sink == 1.2345f) std::printf("%g\n", double(sink));  // keeps the reads of A
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  index_t tokens = 2048, width = 128, seq = 256;
  bool peak_only = false;
  auto precision = backend::matmul_precision::highest;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--peak-only") {  // one JSON line with the peak (benchmarks/compare.py's MFU column)
      peak_only = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_gemm: %s needs a value\n", argv[i]);
      return 1;
    }
    if (k == "--threads") threads = std::stoi(argv[i + 1]);
    else if (k == "--tokens") tokens = std::stoll(argv[i + 1]);
    else if (k == "--width") width = std::stoll(argv[i + 1]);
    else if (k == "--seq") seq = std::stoll(argv[i + 1]);
    else if (k == "--matmul-precision" && std::string(argv[i + 1]) == "medium")
      precision = backend::matmul_precision::medium;
    else if (k == "--matmul-precision" && std::string(argv[i + 1]) == "highest")
      precision = backend::matmul_precision::highest;
    else {
      std::fprintf(stderr, "bench_gemm: unknown option %s\n", argv[i]);
      return 1;
    }
  }
  backend::host_context ctx(threads);
  ctx.set_float32_matmul_precision(precision);
  if (peak_only) {
    std::printf("{\"fma_peak_gflops\": %.1f, \"threads\": %d, \"vector_floats\": %d", fma_peak(ctx.threads()) * 1e-9,
                ctx.threads(), int(xsimd::batch<float>::size));
#if HYENA_HAS_BF16_PRODUCT
    // bf16_peak_gflops: the unit medium's products run on (compare.py --bf16 takes its MFU against it).
    const double dp_peak = bf16_peak(ctx.threads()) * 1e-9;
#if HYENA_HAS_AMX
    if (backend::gemm_detail::use_amx()) {
      std::printf(", \"bf16_peak_gflops\": %.1f, \"bf16_unit\": \"amx\", \"vdpbf16ps_peak_gflops\": %.1f",
                  amx_peak(ctx.threads()) * 1e-9, dp_peak);
    } else
#endif
      std::printf(", \"bf16_peak_gflops\": %.1f, \"bf16_unit\": \"vdpbf16ps\"", dp_peak);
#endif
    std::printf("}\n");
    return 0;
  }
  const double peak1 = fma_peak(1), peak = fma_peak(ctx.threads());
  std::printf("### Matrix products against the FMA peak (%s, %d threads)\n\n",
              precision == backend::matmul_precision::medium ? "bf16 inputs, fp32 sums" : "fp32", ctx.threads());
  std::printf("FMA peak (12 chains of %d-float FMAs per thread): %.1f GFLOP/s on 1 thread, %.1f on %d.\n\n",
              int(xsimd::batch<float>::size), peak1 * 1e-9, peak * 1e-9, ctx.threads());
  std::printf("| product | m x n x k (x batch) | hyena GFLOP/s | %% of peak | Eigen GFLOP/s | hyena / Eigen |\n");
  std::printf("|---|---|---|---|---|---|\n");
  const index_t w = width, mlp = 4 * width, heads = std::max<index_t>(1, width / 32), hd = width / heads;
  using backend::triangle;
  const product shapes[] = {
      {"qkv forward (x W^T)", false, true, tokens, 3 * w, w, 1, triangle::none},
      {"MLP up forward", false, true, tokens, mlp, w, 1, triangle::none},
      {"MLP down forward", false, true, tokens, w, mlp, 1, triangle::none},
      {"MLP up input grad (dy W)", false, false, tokens, w, mlp, 1, triangle::none},
      {"MLP up weight grad (dy^T x)", true, false, mlp, w, tokens, 1, triangle::none},
      {"MLP down weight grad", true, false, w, mlp, tokens, 1, triangle::none},
      {"qkv weight grad", true, false, 3 * w, w, tokens, 1, triangle::none},
      {"Hyena projection weight grad, L = 16K", true, false, w, w, 16384, 1, triangle::none},
      {"attention scores q k^T (c_lower)", false, true, seq, seq, hd, heads, triangle::c_lower},
      {"attention P v (a_lower)", false, false, seq, hd, seq, heads, triangle::a_lower},
      {"attention dv = P^T dO (a_upper)", true, false, seq, hd, seq, heads, triangle::a_upper},
  };
  for (const auto& p : shapes) {
    auto [t_ours, t_eigen] = time_product(ctx, p);
    // Useful work: half of it under a triangle hint (what the causal product needs).
    double flops = 2.0 * double(p.m) * double(p.n) * double(p.k) * double(p.batch);
    if (p.tri != triangle::none) flops /= 2;
    std::printf("| %s | %lldx%lldx%lld%s | %.1f | %.0f%% | %.1f | %.2fx |\n", p.what, (long long)p.m, (long long)p.n,
                (long long)p.k, p.batch > 1 ? (" x" + std::to_string(p.batch)).c_str() : "", flops / t_ours * 1e-9,
                100.0 * flops / t_ours / peak, flops / t_eigen * 1e-9, t_eigen / t_ours);
  }
  std::printf("\nUnder a triangle hint the useful work (half the full product) is what is counted, for both;\n"
              "Eigen computes the full product.\n");
  print_bias_table(ctx, tokens, w, mlp);
  print_cold_output_table(ctx, tokens, w, mlp);
  return 0;
}
