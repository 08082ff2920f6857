// bench_core: the first numbers of the library (see docs/results.md).
//   1. matrix products: GFLOP/s of the cpu backend on the shapes the models use (bench_gemm has more)
//   2. the long convolution: FFT (cpu) against the direct O(L^2) loops (cpu_ref)
//   3. one mixer, forward + backward: attention against the Hyena operator, d = 128
// Prints markdown tables. Usage: bench_core [--quick] [--max-len N]
#include <cstdio>
#include <cstring>
#include <string>

#include <hyena/hyena.hpp>

#include "bench_util.hpp"

using namespace hyena;

namespace {

void bench_gemm(backend::host_context& ctx) {
  std::printf("\n### Matrix products (cpu backend, fp32, %d threads)\n\n", ctx.threads());
  std::printf("| m x k x n | what | ms | GFLOP/s |\n|---|---|---|---|\n");
  struct shape3 { index_t m, k, n; const char* what; };
  const shape3 shapes[] = {{2048, 128, 384, "qkv projection, width 128, 8x256 tokens"},
                           {2048, 128, 512, "MLP up, width 128"},
                           {2048, 512, 128, "MLP down, width 128"},
                           {2048, 128, 256, "unembedding, vocab 256"},
                           {4096, 512, 1536, "qkv projection, width 512"},
                           {1024, 1024, 1024, "square 1024"}};
  for (auto s : shapes) {
    tensor<float> a({s.m, s.k}), b({s.n, s.k}), c({s.m, s.n});
    rng r(1);
    fill_normal(a.v(), r);
    fill_normal(b.v(), r);
    auto run = [&] { backend::cpu::gemm(ctx, false, true, s.m, s.n, s.k, 1.0f, a.data(), s.k, b.data(), s.k, 0.0f, c.data(), s.n); };
    double t = bench::median_seconds(bench::reps_for(bench::median_seconds(1, run)), run);
    std::printf("| %lldx%lldx%lld | %s | %.3f | %.1f |\n", (long long)s.m, (long long)s.k, (long long)s.n, s.what, t * 1e3,
                2.0 * s.m * s.n * s.k / t * 1e-9);
  }
}

void bench_conv(backend::host_context& ctx, index_t max_len) {
  std::printf("\n### Causal long convolution, batch 1, 128 channels, forward (fp32)\n\n");
  std::printf("| L | direct O(L^2) ms (cpu_ref) | FFT ms (cpu) | speed-up |\n|---|---|---|---|\n");
  const index_t C = 128;
  for (index_t L = 256; L <= max_len; L *= 4) {
    tensor<float> x({1, L, C}), h({C, L}), y({1, L, C});
    rng r(2);
    fill_normal(x.v(), r);
    fill_normal(h.v(), r, 0.1);
    auto fft = [&] { backend::cpu::causal_conv_forward(ctx, 1, L, C, x.data(), h.data(), L, y.data()); };
    auto direct = [&] { backend::cpu_ref::causal_conv_forward(ctx, 1, L, C, x.data(), h.data(), L, y.data()); };
    double tf = bench::median_seconds(bench::reps_for(bench::median_seconds(1, fft)), fft);
    double td = L <= 4096 ? bench::median_seconds(1, direct) : -1;
    if (td > 0) std::printf("| %lld | %.2f | %.3f | %.0fx |\n", (long long)L, td * 1e3, tf * 1e3, td / tf);
    else std::printf("| %lld | (skipped: quadratic) | %.3f | |\n", (long long)L, tf * 1e3);
  }
}

// Forward + backward of one mixer layer on (1, L, d).
template <template <class, class> class Mixer>
double time_mixer(backend::host_context& ctx, const models::model_config& mc, index_t L) {
  using layer = Mixer<backend::cpu, float>;
  auto cfg = layer::config::from(mc);
  typename layer::params p, g;
  typename layer::cache k;
  arena<float> pa, ga, ka;
  pa.bind(p, cfg);
  ga.bind(g, cfg);
  ka.bind(k, cfg, 1, L);
  rng r(3);
  layer::init(cfg, p, r);
  tensor<float> x({1, L, mc.hidden}), y({1, L, mc.hidden}), dy({1, L, mc.hidden}), dx({1, L, mc.hidden});
  fill_normal(x.v(), r);
  fill_normal(dy.v(), r);
  auto run = [&] {
    layer::forward(ctx, cfg, p, k, x.v(), y.v());
    layer::backward(ctx, cfg, p, k, dy.v(), dx.v(), g);
  };
  double first = bench::median_seconds(1, run);
  return bench::median_seconds(bench::reps_for(first, 3.0, 1, 10), run);
}

void bench_mixers(backend::host_context& ctx, index_t max_len) {
  std::printf("\n### One mixer, forward + backward, batch 1, d = 128 (4 heads; Hyena order 2, filter FFN 64) (fp32)\n\n");
  std::printf("| L | attention ms | Hyena ms | attention / Hyena |\n|---|---|---|---|\n");
  for (index_t L = 256; L <= max_len; L *= 2) {
    auto mc = models::gpt_neox_config(256, 128, 1, 4, 512, L);
    double ta = time_mixer<nn::attention>(ctx, mc, L);
    double th = time_mixer<nn::hyena_operator>(ctx, mc, L);
    std::printf("| %lld | %.2f | %.2f | %.2f |\n", (long long)L, ta * 1e3, th * 1e3, ta / th);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  index_t max_len = 16384;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) max_len = 1024;
    else if (!std::strcmp(argv[i], "--max-len") && i + 1 < argc) max_len = std::stoll(argv[++i]);
  }
  backend::host_context ctx;
  std::printf("## bench_core (hyena %d.%d.%d)\n", HYENA_VERSION_MAJOR, HYENA_VERSION_MINOR, HYENA_VERSION_PATCH);
  bench_gemm(ctx);
  bench_conv(ctx, max_len);
  bench_mixers(ctx, max_len);
  return 0;
}
