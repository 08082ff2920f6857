// bench_operator: the Hyena operator alone, forward + backward (or forward only), batch 1,
// on (1, L, width) for several lengths L; benchmarks/peers/torch_bench.py --what operator is
// its PyTorch peer (same JSON keys).
//   bench_operator [--lengths 1024 4096 16384 65536] [--width 128] [--reps 5] [--threads N]
//                  [--forward-only] [--max-gb 8]
// Each length first adds up the memory it will need (cache, parameters, activations, the FFT
// workspace of every thread) and prints a "skipped" line instead when that exceeds --max-gb.
// Forward-only runs the operator's inference path (hyena_operator::infer: nothing kept for a
// backward, each buffer reused once consumed), the same output as forward in a fraction of its memory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <hyena/hyena.hpp>

#include "bench_util.hpp"

using namespace hyena;

namespace {

using op = nn::hyena_operator<backend::cpu, float>;

struct options {
  std::vector<index_t> lengths{1024, 4096, 16384, 65536};
  index_t width = 128;
  int reps = 5, threads = 0;
  bool forward_only = false;
  double max_gb = 8.0;
};

// Peak (VmHWM) or current (VmRSS) resident set of this process in MB.
double status_mb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) / 1024.0;
  return 0;
}

// Elements the tensors of a cache take (each rounded up to 16 floats, as the arena lays them out).
template <class Cache>
index_t cache_elements(Cache& k, const op::config& c, index_t L) {
  index_t n = 0;
  for_each_tensor<float>(k, [&](const std::string&, view<float>&, const shape& s) { n += (s.numel() + 15) / 16 * 16; },
                         c, index_t(1), L);
  return n;
}

// Bytes the cpu backend's FFT workspace takes per thread (cpu/fft.hpp's conv_fft_state).
double fft_workspace_bytes(index_t L, bool backward) {
  return backend::conv_fft_state<float>::worker_bytes(L, backward);
}

void run_length(backend::host_context& ctx, const options& o, index_t L, double base_mb) {
  auto mc = models::gpt_neox_config(256, o.width, 1, 1, 4 * o.width, L);
  const auto cfg = op::config::from(mc);
  const char* key = o.forward_only ? "fwd_ms" : "fwd_bwd_ms";

  op::params p, g;
  op::cache k;
  op::infer_cache ik;
  index_t n_params = 0;
  for_each_tensor<float>(p, [&](const std::string&, view<float>&, const shape& s) { n_params += s.numel(); }, cfg);
  const double act = double(L * o.width) * sizeof(float);
  const index_t cache_n = o.forward_only ? cache_elements(ik, cfg, L) : cache_elements(k, cfg, L);
  const double need = double(cache_n) * sizeof(float) +
                      double(n_params) * sizeof(float) * (o.forward_only ? 1 : 2) + act * (o.forward_only ? 2 : 4) +
                      fft_workspace_bytes(L, !o.forward_only) * ctx.threads();
  const double need_gb = need / (1u << 30);
  if (need_gb > o.max_gb) {
    std::printf("{\"impl\": \"hyena\", \"op\": \"hyena_operator\", \"L\": %lld, \"width\": %lld, \"%s\": null, "
                "\"skipped\": \"needs about %.1f GB > --max-gb %.1f\"}\n",
                (long long)L, (long long)o.width, key, need_gb, o.max_gb);
    std::fflush(stdout);
    return;
  }

  arena<float> pa, ga, ka;
  pa.bind(p, cfg);
  if (o.forward_only) ka.bind(ik, cfg, index_t(1), L);
  else {
    ga.bind(g, cfg);
    ka.bind(k, cfg, index_t(1), L);
  }
  rng r(3);
  op::init(cfg, p, r);
  tensor<float> x({1, L, o.width}), y({1, L, o.width});
  tensor<float> dy(o.forward_only ? shape{0} : shape{1, L, o.width}), dx(o.forward_only ? shape{0} : shape{1, L, o.width});
  fill_normal(x.v(), r);
  if (!o.forward_only) fill_normal(dy.v(), r);
  auto step = [&] {
    if (o.forward_only) {
      op::infer(ctx, cfg, p, ik, x.v(), y.v());
      return;
    }
    op::forward(ctx, cfg, p, k, x.v(), y.v());
    op::backward(ctx, cfg, p, k, dy.v(), dx.v(), g);
  };
  // One run (warm-up, and the time that picks the repetitions: about 3 s in all).
  auto a = std::chrono::steady_clock::now();
  step();
  const double one = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  const int reps = bench::reps_for(one, 3.0, 1, o.reps);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    a = std::chrono::steady_clock::now();
    step();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  std::printf("{\"impl\": \"hyena\", \"op\": \"hyena_operator\", \"L\": %lld, \"width\": %lld, \"%s\": %.3f, "
              "\"threads\": %d, \"peak_rss_mb\": %.1f, \"est_gb\": %.2f}\n",
              (long long)L, (long long)o.width, key, t[t.size() / 2] * 1e3, ctx.threads(),
              status_mb("VmHWM") - base_mb, need_gb);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("bench_operator: " + k + " needs a value");
      return argv[++i];
    };
    if (k == "--lengths") {
      o.lengths.clear();
      while (i + 1 < argc && argv[i + 1][0] != '-') o.lengths.push_back(std::stoll(argv[++i]));
    } else if (k == "--width") o.width = std::stoll(value());
    else if (k == "--reps") o.reps = std::stoi(value());
    else if (k == "--threads") o.threads = std::stoi(value());
    else if (k == "--max-gb") o.max_gb = std::stod(value());
    else if (k == "--forward-only") o.forward_only = true;
    else {
      std::fprintf(stderr, "bench_operator: unknown option %s\n", argv[i]);
      return 1;
    }
  }
  if (o.lengths.empty() || o.width <= 0 || o.reps <= 0) {
    std::fprintf(stderr, "bench_operator: need at least one length, a positive width and reps\n");
    return 1;
  }
  std::sort(o.lengths.begin(), o.lengths.end());  // ascending, so peak_rss_mb is this length's
  backend::host_context ctx(o.threads);
  const double base_mb = status_mb("VmRSS");
  for (index_t L : o.lengths) run_length(ctx, o, L, base_mb);
  return 0;
}
