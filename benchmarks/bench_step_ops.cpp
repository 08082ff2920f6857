// bench_step_ops: two pieces of a training step timed alone, at the bench_train shape (docs/results.md
// section 5, run K):
//   - the AdamW update over the teacher's parameter count in the 2^14-element segments train::adamw
//     cuts: cpu_ref (the scalar loop, one thread) beside the cpu backend on 1 and N threads;
//   - the fused causal attention, forward and backward, (batch 8 x 4 heads x 256 positions x 32)
//     per layer, in ms and in GFLOP/s of useful (causal-half) work.
//   bench_step_ops [--threads N] [--reps 30] [--matmul-precision highest|medium]
// (medium: attention's products with bf16 inputs and fp32 sums, backend::matmul_precision)
// Best of `reps` timings each; prints markdown tables.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <hyena/hyena.hpp>

using namespace hyena;

namespace {

template <class Fn>
double best_ms(int reps, Fn&& fn) {
  fn();  // warm-up
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

void adamw_rows(int threads, int reps) {
  const index_t n = 858880, segment = index_t(1) << 14;  // the teacher's parameters (bench_train)
  rng r(1);
  std::vector<float> p(n), g(n), m(n), v(n);
  for (index_t i = 0; i < n; ++i) {
    p[i] = float(r.normal()), g[i] = 0.1f * float(r.normal()), m[i] = 0.01f * float(r.normal());
    v[i] = 1e-3f * std::abs(float(r.normal())) + 1e-6f;
  }
  std::vector<backend::adamw_segment<float>> segs;
  for (index_t i = 0; i < n; i += segment)
    segs.push_back({p.data() + i, g.data() + i, m.data() + i, v.data() + i, std::min(segment, n - i), 1e-4, 1 - 1e-5});
  const backend::adamw_hyper h{0.9, 0.999, 1e-8, 0.5, 0.7, 1.0};
  backend::host_context one(1), all(threads);
  const auto count = index_t(segs.size());
  std::printf("### AdamW update, %lld parameters in 2^14-element segments (best of %d, ms)\n\n", (long long)n, reps);
  std::printf("| cpu_ref, 1 thread | cpu, 1 thread | cpu, %d threads |\n|---|---|---|\n", threads);
  std::printf("| %.3f | %.3f | %.3f |\n\n", best_ms(reps, [&] { backend::cpu_ref::adamw_step(one, segs.data(), count, h); }),
              best_ms(reps, [&] { backend::cpu::adamw_step(one, segs.data(), count, h); }),
              best_ms(reps, [&] { backend::cpu::adamw_step(all, segs.data(), count, h); }));
}

void attention_rows(int threads, int reps, backend::matmul_precision precision) {
  const index_t B = 8, L = 256, H = 4, D = 32, row = 3 * H * D;
  rng r(2);
  std::vector<float> qkv(B * L * row), out(B * L * H * D), dout(out.size()), lse(B * H * L), dqkv(qkv.size());
  for (auto& x : qkv) x = float(r.normal());
  for (auto& x : dout) x = float(r.normal());
  backend::host_context ctx(threads);
  ctx.set_float32_matmul_precision(precision);
  const float scale = float(1 / std::sqrt(double(D)));
  const double useful = 2.0 * double(B * H) * (double(L) * double(L + 1) / 2) * double(D);  // one product
  const double fwd = best_ms(reps, [&] {
    backend::cpu::causal_attention_forward(ctx, B, L, H, H, D, scale, qkv.data(), row, out.data(), H * D, lse.data());
  });
  const double bwd = best_ms(reps, [&] {
    backend::cpu::causal_attention_backward(ctx, B, L, H, H, D, scale, qkv.data(), row, out.data(), dout.data(), H * D,
                                            lse.data(), dqkv.data());
  });
  std::printf("### Fused causal attention, %lld x %lld heads x %lld positions x %lld, one layer (%d threads, best of %d%s)\n\n",
              (long long)B, (long long)H, (long long)L, (long long)D, threads, reps,
              precision == backend::matmul_precision::medium ? ", bf16 products" : "");
  std::printf("| pass | ms | useful GFLOP/s |\n|---|---|---|\n");
  std::printf("| forward (q k^T, P v) | %.3f | %.1f |\n", fwd, 2 * useful / fwd * 1e-6);
  std::printf("| backward (dq, dk, dv, dP; the scores recomputed, not counted) | %.3f | %.1f |\n", bwd, 4 * useful / bwd * 1e-6);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = backend::host_context().threads(), reps = 30;
  auto precision = backend::matmul_precision::highest;
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_step_ops: %s needs a value\n", argv[i]);
      return 1;
    }
    if (k == "--threads") threads = std::stoi(argv[i + 1]);
    else if (k == "--reps") reps = std::stoi(argv[i + 1]);
    else if (k == "--matmul-precision" && (std::string(argv[i + 1]) == "medium" || std::string(argv[i + 1]) == "highest"))
      precision = std::string(argv[i + 1]) == "medium" ? backend::matmul_precision::medium
                                                       : backend::matmul_precision::highest;
    else {
      std::fprintf(stderr, "bench_step_ops: unknown option %s\n", argv[i]);
      return 1;
    }
  }
  adamw_rows(threads, reps);
  attention_rows(threads, reps, precision);
  return 0;
}
