// bench_cuda: the CUDA backend's timings, the GPU side of benchmarks/gpu_compare.py (its PyTorch
// peer is benchmarks/peers/torch_bench.py --device cuda; same JSON keys, one line per row).
//
//   bench_cuda --what train    [--model teacher|hyena_student|both] [--tf32] [--hidden 512 --layers 6
//              --heads 8 --mlp 2048 --seq 2048 --batch 8 --vocab 50304] [--reps 10]
//   bench_cuda --what operator [--lengths 1024 4096 16384 65536] [--width 512] [--reps 10]
//   bench_cuda --what conv     [--lengths 1024 4096 16384 32768] [--batch 64] [--width 768] [--reps 10]
//
// train: a training step (forward, cross-entropy, backward, AdamW) of the GPT-NeoX teacher and its
// Hyena student at Pythia-70M's shapes by default; forward alone too. operator: the Hyena operator
// (order 2, filter FFN 64) forward + backward on (1, L, width). conv: the long causal convolution
// alone (backend op causal_conv_forward + causal_conv_backward with dx and dh) on (batch, L, width).
// Times: the median of --reps runs after two warm-ups, each run bracketed by CUDA events on the
// context's stream (ops are queued there; the few host syncs inside, such as the loss read-back,
// are part of the step as in any training loop). Needs a GPU; not built by default (gpu-check.sh
// builds it).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <hyena/backend/cuda/cuda.hpp>
#include <hyena/hyena.hpp>
#include <hyena/nn/loss.hpp>
#include <hyena/tensor/transfer.hpp>
#include <hyena/train/adamw.hpp>

using namespace hyena;
using gpu = backend::cuda;

namespace {

struct options {
  std::string what = "train", model = "both";
  bool tf32 = false;
  index_t hidden = 512, layers = 6, heads = 8, mlp = 2048, seq = 2048, batch = 8, vocab = 50304;
  index_t width = 512, conv_batch = 64, conv_width = 768;
  std::vector<index_t> lengths;
  int reps = 10;
};

// Median milliseconds of `reps` runs of fn (after two warm-ups), timed by events on ctx's stream.
double median_ms(gpu::context& ctx, int reps, const std::function<void()>& fn) {
  fn();
  fn();
  cudaEvent_t a, b;
  HYENA_CUDA_CHECK(cudaEventCreate(&a));
  HYENA_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    HYENA_CUDA_CHECK(cudaEventRecord(a, ctx.stream()));
    fn();
    HYENA_CUDA_CHECK(cudaEventRecord(b, ctx.stream()));
    HYENA_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    HYENA_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double peak_mb() {
  std::size_t free_b = 0, total_b = 0;
  HYENA_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return double(total_b - free_b) / 1048576.0;  // in use on the device now (this process and others)
}

template <class Model>
void bench_train(gpu::context& ctx, const options& o, const char* name) {
  const auto cfg = models::gpt_neox_config(o.vocab, o.hidden, o.layers, o.heads, o.mlp, o.seq);
  Model m(cfg);
  rng r(0);
  m.init(r);
  train::adamw<float, gpu> opt(train::param_entries<float, device_memory>(m.parameters(), m.gradients(), m.config()));
  std::vector<std::int32_t> in(std::size_t(o.batch * o.seq)), tg(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i] = std::int32_t(r.below(o.vocab));
    tg[i] = std::int32_t(r.below(o.vocab));
  }
  tensor<std::int32_t, device_memory> din({o.batch, o.seq}), dtg({o.batch, o.seq});
  copy_from_host(din.v(), in.data());
  copy_from_host(dtg.v(), tg.data());
  m.reserve(o.batch, o.seq, models::mode::train);
  auto step = [&] {
    auto logits = m.forward(ctx, din.v());
    nn::cross_entropy_loss<gpu>(ctx, logits, dtg.v(), m.dlogits());
    m.zero_grad();
    m.backward(ctx);
    opt.step(ctx, 1e-4);
  };
  const double step_ms = median_ms(ctx, o.reps, step);
  const double train_mb = peak_mb();
  m.reserve(o.batch, o.seq, models::mode::infer);
  const double fwd_ms = median_ms(ctx, o.reps, [&] { m.forward(ctx, din.v()); });
  const double tokens = double(o.batch * o.seq);
  std::printf("{\"impl\": \"hyena\", \"device\": \"cuda\", \"model\": \"%s\", \"tf32\": %s, \"train_step_ms\": %.3f, "
              "\"forward_ms\": %.3f, \"train_tokens_per_s\": %.0f, \"forward_tokens_per_s\": %.0f, "
              "\"device_mb_in_use\": %.0f, \"params\": %lld, \"batch\": %lld, \"seq\": %lld}\n",
              name, o.tf32 ? "true" : "false", step_ms, fwd_ms, tokens / (step_ms * 1e-3), tokens / (fwd_ms * 1e-3),
              train_mb, (long long)m.parameter_count(), (long long)o.batch, (long long)o.seq);
  std::fflush(stdout);
}

void bench_operator(gpu::context& ctx, const options& o, index_t L) {
  using op = nn::hyena_operator<gpu, float>;
  const auto cfg = op::config::from(models::gpt_neox_config(256, o.width, 1, 1, 4 * o.width, L));
  op::params p, g;
  op::cache k;
  arena<float, device_memory> pa, ga, ka;
  pa.bind(p, cfg);
  ga.bind(g, cfg);
  ka.bind(k, cfg, index_t(1), L);
  rng r(3);
  op::init(cfg, p, r);
  tensor<float, device_memory> x({1, L, o.width}), y({1, L, o.width}), dy({1, L, o.width}), dx({1, L, o.width});
  fill_normal(x.v(), r);
  fill_normal(dy.v(), r);
  const double ms = median_ms(ctx, o.reps, [&] {
    op::forward(ctx, cfg, p, k, x.v(), y.v());
    op::backward(ctx, cfg, p, k, dy.v(), dx.v(), g);
  });
  std::printf("{\"impl\": \"hyena\", \"device\": \"cuda\", \"op\": \"hyena_operator\", \"L\": %lld, \"width\": %lld, "
              "\"fwd_bwd_ms\": %.3f, \"device_mb_in_use\": %.0f}\n",
              (long long)L, (long long)o.width, ms, peak_mb());
  std::fflush(stdout);
}

void bench_conv(gpu::context& ctx, const options& o, index_t L) {
  const index_t B = o.conv_batch, C = o.conv_width;
  tensor<float, device_memory> x({B, L, C}), h({C, L}), y({B, L, C}), dy({B, L, C}), dx({B, L, C}), dh({C, L});
  rng r(4);
  fill_normal(x.v(), r);
  fill_normal(h.v(), r, 0.1);
  fill_normal(dy.v(), r);
  const double fwd = median_ms(ctx, o.reps, [&] {
    gpu::causal_conv_forward<float>(ctx, B, L, C, x.data(), h.data(), L, y.data());
  });
  const double fwd_bwd = median_ms(ctx, o.reps, [&] {
    gpu::causal_conv_forward<float>(ctx, B, L, C, x.data(), h.data(), L, y.data());
    gpu::causal_conv_backward<float>(ctx, B, L, C, x.data(), h.data(), L, dy.data(), dx.data(), dh.data());
  });
  std::printf("{\"impl\": \"hyena\", \"device\": \"cuda\", \"op\": \"long_conv\", \"L\": %lld, \"batch\": %lld, "
              "\"width\": %lld, \"fwd_ms\": %.3f, \"fwd_bwd_ms\": %.3f}\n",
              (long long)L, (long long)B, (long long)C, fwd, fwd_bwd);
  std::fflush(stdout);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("bench_cuda: " + k + " needs a value");
      return argv[++i];
    };
    if (k == "--what") o.what = value();
    else if (k == "--model") o.model = value();
    else if (k == "--tf32") o.tf32 = true;
    else if (k == "--hidden") o.hidden = std::stoll(value());
    else if (k == "--layers") o.layers = std::stoll(value());
    else if (k == "--heads") o.heads = std::stoll(value());
    else if (k == "--mlp") o.mlp = std::stoll(value());
    else if (k == "--seq") o.seq = std::stoll(value());
    else if (k == "--batch") o.batch = o.conv_batch = std::stoll(value());
    else if (k == "--vocab") o.vocab = std::stoll(value());
    else if (k == "--width") o.width = o.conv_width = std::stoll(value());
    else if (k == "--reps") o.reps = std::stoi(value());
    else if (k == "--lengths") {
      while (i + 1 < argc && argv[i + 1][0] != '-') o.lengths.push_back(std::stoll(argv[++i]));
    } else {
      throw std::runtime_error("bench_cuda: unknown option " + k);
    }
  }
  if (o.lengths.empty())
    o.lengths = o.what == "conv" ? std::vector<index_t>{1024, 4096, 16384, 32768}
                                 : std::vector<index_t>{1024, 4096, 16384, 65536};
  if (o.what != "train" && o.what != "operator" && o.what != "conv")
    throw std::runtime_error("bench_cuda: --what must be train, operator or conv");
  if (o.reps <= 0) throw std::runtime_error("bench_cuda: --reps must be positive");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const options o = parse(argc, argv);
    gpu::context ctx(0, o.tf32);
    if (o.what == "train") {
      using teacher = models::gpt_neox<gpu>;
      if (o.model != "hyena_student") bench_train<teacher>(ctx, o, "teacher");
      if (o.model != "teacher") bench_train<models::hyena_student<teacher>>(ctx, o, "hyena_student");
    } else {
      for (index_t L : o.lengths) {
        if (o.what == "operator") bench_operator(ctx, o, L);
        else bench_conv(ctx, o, L);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
