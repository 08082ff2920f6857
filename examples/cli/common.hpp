// common.hpp: what the `hyena` subcommands share: presets, contexts and the data folder, and
// (models.hpp) the model types the CLI knows and loading a model from any format.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <type_traits>

#include <hyena/dist/communicator.hpp>

#include "models.hpp"

namespace hyena::cli {

// The ranks of a data-parallel run (`mpirun -np N hyena train|distill ...`); main() sets it
// when an MPI launcher started the process, else it is this process alone.
inline dist::communicator*& world_slot() {
  static dist::communicator* w = nullptr;
  return w;
}
inline dist::communicator& world() { return world_slot() ? *world_slot() : dist::local(); }

// The Hyena student architecture of a teacher architecture.
inline std::string student_arch(const std::string& teacher) {
  if (teacher == "gpt_neox") return "hyena_gpt_neox";
  if (teacher == "llama") return "hyena_llama";
  HYENA_FAIL("no Hyena student for architecture '", teacher, "'");
}

// Named model shapes. "small" is the benchmark shape of the issues (width 128, 4 layers,
// 4 heads, MLP 512, context 256); "tiny" runs in seconds (CI); "pythia-70m" is Pythia-70M.
inline models::model_config preset(const std::string& name, const std::string& arch, index_t vocab) {
  const bool is_llama = arch.find("llama") != std::string::npos;
  auto make = [&](index_t hidden, index_t layers, index_t heads, index_t inter, index_t seq) {
    return is_llama ? models::llama_config(vocab, hidden, layers, heads, heads, inter, seq)
                    : models::gpt_neox_config(vocab, hidden, layers, heads, inter, seq);
  };
  if (name == "tiny") return make(32, 2, 4, 64, 64);
  if (name == "small") return make(128, 4, 4, 512, 256);
  if (name == "pythia-70m") {
    auto c = models::pythia_70m_config();
    c.vocab = vocab;
    return c;
  }
  HYENA_FAIL("unknown preset '", name, "' (expected tiny, small or pythia-70m)");
}

// The Hyena operator of a preset's students: the defaults, with a narrower filter FFN for "tiny".
inline nn::hyena_hparams preset_hyena(const std::string& name) {
  nn::hyena_hparams h;
  if (name == "tiny") h.filter_order = 16;
  return h;
}

// A preset as the full config of model type M (its mixer's hyperparameters included). The
// shape follows M's block (Llama's RMSNorm block or GPT-NeoX's), so a registered user model
// gets its teacher's shape whatever its name.
template <class M>
typename M::config_type preset_config(const std::string& name, index_t vocab) {
  const bool llama_block = std::is_same_v<typename M::norm, typename llama::norm>;
  typename M::config_type c(preset(name, llama_block ? "llama" : "gpt_neox", vocab));
  if constexpr (std::is_same_v<typename M::mixer_hparams, nn::hyena_hparams>) c.mixer = preset_hyena(name);
  return c;
}

// A context with `threads` threads (0: all, or under mpirun the cores divided among the ranks
// on this machine). OpenMP's process-wide default follows it, so the few loops outside backend
// ops (optimizer, clipping) use the same count.
inline backend::host_context make_context(int threads) {
  if (threads == 0 && world().size() > 1) {
    int local = 1;  // ranks on this machine, as Open MPI, MPICH (Hydra) or Slurm tell each rank
    for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
      if (const char* s = std::getenv(v); s && std::atoi(s) > 0) {
        local = std::atoi(s);
        break;
      }
    threads = std::max(1, int(std::thread::hardware_concurrency()) / local);
  }
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads(threads);
#endif
  return backend::host_context(threads);
}

// Where a command runs (--device, --tf32, --bf16, --threads; commands.hpp adds them to a subcommand).
struct device_options {
  std::string name = "cpu";  // cpu, or cuda (a CLI built with HYENA_WITH_CUDA: cuda_commands.cu)
  bool tf32 = false;         // cuda: float products on TF32 tensor cores (PyTorch's allow_tf32)
  bool bf16 = false;         // cpu: products with bf16 inputs and fp32 sums (backend::matmul_precision::medium)
  int threads = 0;           // host threads (0: all)
};

// The context backend B runs on: for the CPU a host_context with d.threads; for a device backend
// the context of device 0, TF32 as asked. Host threads follow d.threads either way.
template <class B>
typename B::context device_context(const device_options& d) {
  auto host = make_context(d.threads);
  if constexpr (std::is_same_v<typename B::context, backend::host_context>) {
    HYENA_CHECK(!d.tf32, "--tf32 applies to --device cuda only (on the CPU, --bf16 is its counterpart)");
    if (d.bf16) {
      host.set_float32_matmul_precision(backend::matmul_precision::medium);
#if !HYENA_HAS_BF16_PRODUCT
      std::fprintf(stderr, "hyena: --bf16: this build has no bf16 products (it needs a CPU with AVX512-BF16 and "
                           "-march=native); products stay fp32\n");
#endif
    }
    return host;
  } else {
    HYENA_CHECK(!d.bf16, "--bf16 applies to --device cpu only (on cuda, --tf32 is its counterpart)");
    return typename B::context(0, d.tf32);
  }
}

// HYENA_DATA_DIR, else the folder CMake was configured with (../shared/data by default).
inline std::string data_dir() {
  if (const char* d = std::getenv("HYENA_DATA_DIR"); d && *d) return d;
#ifdef HYENA_DEFAULT_DATA_DIR
  return HYENA_DEFAULT_DATA_DIR;
#else
  return "../shared/data";
#endif
}

}  // namespace hyena::cli
