// bench_scale: data-parallel training throughput and per-rank memory, 1 to N ranks.
//
//   mpirun -np N bench_scale [--model teacher|student] [--preset small|pythia-70m] [--batch B]
//                            [--seq T] [--steps S] [--zero1] [--threads 1]
//
// Trains the model (GPT-NeoX shape of the preset, vocab 256 for "small", 50304 for
// "pythia-70m"; or its Hyena student) for S steps of B sequences per rank through the library's
// trainer, on random tokens, and prints one JSON line from rank 0: tokens/s over all ranks (the
// steps after the first), the share of the step spent in the gradient all-reduce, the optimizer
// state and the peak resident memory of every rank. Run without mpirun it is the 1-rank row.
// Numbers and commands: docs/results.md ("Scale-out"), docs/results/scale.json.
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <hyena/dist/mpi.hpp>
#include <hyena/hyena.hpp>
#include <hyena/train/trainer.hpp>

using namespace hyena;

namespace {
struct args {
  std::string model = "teacher", preset = "small";
  index_t batch = 8, seq = 256, steps = 20;
  bool zero1 = false;
  int threads = 1;
};

models::model_config shape_of(const std::string& preset) {
  if (preset == "small") return models::gpt_neox_config(256, 128, 4, 4, 512, 256);
  if (preset == "pythia-70m") return models::pythia_70m_config();
  HYENA_FAIL("bench_scale: unknown preset '", preset, "' (small or pythia-70m)");
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

template <class Model>
void run(const args& a, dist::communicator& comm, typename Model::config_type cfg) {
  Model m(cfg);
  rng r(1);
  m.init(r);
  std::vector<std::int32_t> tokens(std::size_t(1) << 20);
  rng data(7);
  for (auto& t : tokens) t = std::int32_t(data.below(std::uint64_t(cfg.vocab)));
  train::trainer_options o;
  o.batch = a.batch;
  o.seq = a.seq;
  o.steps = a.steps;
  o.warmup = 2;
  o.progress = false;
  o.comm = &comm;
  o.zero1 = a.zero1;
  backend::host_context ctx(a.threads);
  train::trainer<Model> t(m, o);
  auto res = t.run(ctx, std::span<const std::int32_t>(tokens));
  // Throughput over the steps after the first (its allocations and page faults are start-up).
  const double first = res.history.front().seconds, last = res.history.back().seconds;
  const double tokens_per_s = double(o.tokens_per_step() * (a.steps - 1)) / (last - first);
  // Per-rank numbers gathered at rank 0: slot r of each array is rank r's.
  const std::size_t n = std::size_t(comm.size());
  std::vector<double> rss(n, 0.0), state(n, 0.0), reduce(n, 0.0);
  rss[std::size_t(comm.rank())] = peak_rss_mb();
  state[std::size_t(comm.rank())] = double(t.optimizer().state_bytes()) / 1048576.0;
  reduce[std::size_t(comm.rank())] = res.reduce_seconds / res.seconds;
  comm.all_reduce_sum(rss.data(), n);
  comm.all_reduce_sum(state.data(), n);
  comm.all_reduce_sum(reduce.data(), n);
  if (!comm.is_root()) return;
  auto list = [](const std::vector<double>& v, const char* fmt) {
    std::string s = "[";
    char buf[64];
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::snprintf(buf, sizeof buf, fmt, v[i]);
      s += (i ? ", " : "") + std::string(buf);
    }
    return s + "]";
  };
  std::printf("{\"ranks\": %d, \"threads_per_rank\": %d, \"model\": \"%s\", \"preset\": \"%s\", \"params\": %lld, "
              "\"batch_per_rank\": %lld, \"seq\": %lld, \"steps\": %lld, \"zero1\": %s, \"tokens_per_s\": %.0f, "
              "\"step_ms\": %.1f, \"allreduce_share\": %s, \"optimizer_state_mb\": %s, \"peak_rss_mb\": %s, "
              "\"param_mb\": %.2f}\n",
              comm.size(), a.threads, a.model.c_str(), a.preset.c_str(), (long long)m.parameter_count(),
              (long long)a.batch, (long long)a.seq, (long long)a.steps, a.zero1 ? "true" : "false", tokens_per_s,
              1e3 * (last - first) / double(a.steps - 1), list(reduce, "%.4f").c_str(), list(state, "%.2f").c_str(),
              list(rss, "%.1f").c_str(), double(m.parameter_arena().bytes()) / 1048576.0);
  std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<dist::communicator> mpi;
  if (dist::launched_by_mpi()) mpi = std::make_unique<dist::mpi_communicator>(&argc, &argv);
  dist::communicator& comm = mpi ? *mpi : dist::local();
  args a;
  try {
    for (int i = 1; i < argc; ++i) {
      auto next = [&] {
        HYENA_CHECK(i + 1 < argc, "bench_scale: ", argv[i], " needs a value");
        return std::string(argv[++i]);
      };
      const std::string k = argv[i];
      if (k == "--model") a.model = next();
      else if (k == "--preset") a.preset = next();
      else if (k == "--batch") a.batch = std::stoll(next());
      else if (k == "--seq") a.seq = std::stoll(next());
      else if (k == "--steps") a.steps = std::stoll(next());
      else if (k == "--threads") a.threads = std::stoi(next());
      else if (k == "--zero1") a.zero1 = true;
      else HYENA_FAIL("bench_scale: unknown option ", k);
    }
    HYENA_CHECK(a.steps >= 3, "bench_scale: --steps must be at least 3");
    auto cfg = shape_of(a.preset);
    using teacher = models::gpt_neox<backend::cpu>;
    if (a.model == "teacher") run<teacher>(a, comm, cfg);
    else if (a.model == "student") run<models::hyena_student<teacher>>(a, comm, {cfg, nn::hyena_hparams{}});
    else HYENA_FAIL("bench_scale: unknown model '", a.model, "' (teacher or student)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_scale (rank %d): %s\n", comm.rank(), e.what());
    if (comm.size() > 1) comm.abort(1);
    return 1;
  }
  return 0;
}
