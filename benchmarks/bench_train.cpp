// bench_train: training-step and forward throughput of the teacher and its Hyena student
// at the benchmark shape (vocab 256, width 128, 4 layers, 4 heads, MLP 512, seq 256,
// batch 8) or any other given on the command line.
//   bench_train [--hidden 128 --layers 4 --heads 4 --mlp 512 --seq 256 --batch 8 --vocab 256 --reps 5]
//               [--model 0|1] [--matmul-precision highest|medium]
// Prints one JSON line per model (benchmarks/peers/ runs PyTorch on the same shapes); adamw_step_ms
// is the optimizer's update alone (part of train_step_ms). --matmul-precision medium runs the
// products with bf16 inputs and fp32 sums (backend::matmul_precision; PyTorch's peer of it is
// torch_bench.py --autocast bf16).
#include <cstdio>
#include <cstring>
#include <string>

#include <hyena/hyena.hpp>
#include <hyena/nn/loss.hpp>
#include <hyena/train/adamw.hpp>

#include "bench_util.hpp"

using namespace hyena;

namespace {
struct shape_args {
  index_t hidden = 128, layers = 4, heads = 4, mlp = 512, seq = 256, batch = 8, vocab = 256;
  int reps = 5;
  backend::matmul_precision precision = backend::matmul_precision::highest;
};

template <class Model>
void run(const char* name, const shape_args& s) {
  auto cfg = models::gpt_neox_config(s.vocab, s.hidden, s.layers, s.heads, s.mlp, s.seq);
  Model m(cfg);
  rng r(0);
  m.init(r);
  train::adamw<float> opt(train::param_entries<float>(m.parameters(), m.gradients(), m.config()));
  backend::host_context ctx;
  ctx.set_float32_matmul_precision(s.precision);
  tensor<std::int32_t> in({s.batch, s.seq}), tg({s.batch, s.seq});
  for (index_t i = 0; i < in.numel(); ++i) {
    in.data()[i] = std::int32_t(r.below(s.vocab));
    tg.data()[i] = std::int32_t(r.below(s.vocab));
  }
  m.reserve(s.batch, s.seq, models::mode::train);
  auto step = [&] {
    auto logits = m.forward(ctx, in.v());
    nn::cross_entropy_loss<backend::cpu>(ctx, logits, tg.v(), m.dlogits());
    m.zero_grad();
    m.backward(ctx);
    opt.step(1e-4);
  };
  const double t_step = bench::median_seconds(s.reps, step);
  const double t_adamw = bench::median_seconds(s.reps, [&] { opt.step(1e-4); });  // the optimizer alone
  const double tokens = double(s.batch * s.seq);
  const std::size_t train_bytes = m.parameter_arena().bytes() * 2 + opt.state_bytes() + m.activation_bytes();
  m.reserve(s.batch, s.seq, models::mode::infer);
  const double t_fwd = bench::median_seconds(s.reps, [&] { m.forward(ctx, in.v()); });
  std::printf("{\"impl\": \"hyena\", \"model\": \"%s\", \"threads\": %d, \"train_tokens_per_s\": %.0f, "
              "\"forward_tokens_per_s\": %.0f, \"train_step_ms\": %.2f, \"adamw_step_ms\": %.3f, \"arena_mb\": %.1f, "
              "\"params\": %lld, \"matmul_precision\": \"%s\"}\n",
              name, ctx.threads(), tokens / t_step, tokens / t_fwd, t_step * 1e3, t_adamw * 1e3, train_bytes / 1048576.0,
              (long long)m.parameter_count(), s.precision == backend::matmul_precision::medium ? "medium" : "highest");
  std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv) {
  shape_args s;
  std::string which = "both";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--matmul-precision") {
      const std::string p = argv[i + 1];
      if (p != "highest" && p != "medium") {
        std::fprintf(stderr, "bench_train: --matmul-precision must be highest or medium, got %s\n", p.c_str());
        return 1;
      }
      s.precision = p == "medium" ? backend::matmul_precision::medium : backend::matmul_precision::highest;
      continue;
    }
    index_t v = std::stoll(argv[i + 1]);
    if (k == "--hidden") s.hidden = v;
    else if (k == "--layers") s.layers = v;
    else if (k == "--heads") s.heads = v;
    else if (k == "--mlp") s.mlp = v;
    else if (k == "--seq") s.seq = v;
    else if (k == "--batch") s.batch = v;
    else if (k == "--vocab") s.vocab = v;
    else if (k == "--reps") s.reps = int(v);
    else if (k == "--model") which = v == 0 ? "teacher" : "student";
    else {
      std::fprintf(stderr, "bench_train: unknown option %s\n", argv[i]);
      return 1;
    }
  }
  if (which != "student") run<models::gpt_neox<backend::cpu>>("teacher", s);
  if (which != "teacher") run<models::hyena_student<models::gpt_neox<backend::cpu>>>("hyena_student", s);
  return 0;
}
