// common.hpp: what the `hyena` subcommands share: the model types the CLI knows,
// presets, the data folder and checkpoint loading.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <hyena/hyena.hpp>
#include <hyena/models/config_json.hpp>
#include <hyena/train/checkpoint.hpp>

namespace hyena::cli {

using B = backend::cpu;
using gpt_neox = models::gpt_neox<B>;
using llama = models::llama<B>;
using hyena_gpt_neox = models::hyena_student<gpt_neox>;
using hyena_llama = models::hyena_student<llama>;

template <class M>
struct type_tag {
  using type = M;
};

// Calls fn(type_tag<Model>{}) for the architecture named `arch`.
template <class Fn>
decltype(auto) with_arch(const std::string& arch, Fn&& fn) {
  if (arch == "gpt_neox") return fn(type_tag<gpt_neox>{});
  if (arch == "llama") return fn(type_tag<llama>{});
  if (arch == "hyena_gpt_neox") return fn(type_tag<hyena_gpt_neox>{});
  if (arch == "hyena_llama") return fn(type_tag<hyena_llama>{});
  HYENA_FAIL("unknown architecture '", arch, "' (expected gpt_neox, llama, hyena_gpt_neox or hyena_llama)");
}

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

// A preset as the full config of model type M (its mixer's hyperparameters included).
template <class M>
typename M::config_type preset_config(const std::string& name, const std::string& arch, index_t vocab) {
  typename M::config_type c(preset(name, arch, vocab));
  if constexpr (std::is_same_v<typename M::mixer_hparams, nn::hyena_hparams>) c.mixer = preset_hyena(name);
  return c;
}

// A context with `threads` threads (0: all). OpenMP's process-wide default follows it, so
// the few loops outside backend ops (optimizer, clipping) use the same count.
inline backend::host_context make_context(int threads) {
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads(threads);
#endif
  return backend::host_context(threads);
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

// The architecture recorded in a checkpoint ("hyena.arch").
inline std::string checkpoint_arch(const std::string& path) {
  auto f = io::safetensors_file::open(path);
  auto it = f.metadata().find("hyena.arch");
  HYENA_CHECK(it != f.metadata().end(), "checkpoint ", path, ": no hyena.arch metadata");
  return it->second;
}

// A model of type M with the config and weights of checkpoint `path`.
template <class M>
M load_model(const std::string& path) {
  M m(train::checkpoint_config<typename M::config_type>(path));
  train::load_checkpoint(path, m);
  return m;
}

// Loads a model from any format we read and calls fn(model, arch):
//   a Hugging Face folder (config.json + model.safetensors[.index.json]): GPT-NeoX or Llama;
//   a llama2.c checkpoint (*.bin): Llama;
//   our own checkpoint (*.safetensors with hyena.arch metadata): any architecture.
template <class Fn>
void with_any_model(const std::string& path, Fn&& fn) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) {
    const auto info = io::hf_model_config(path);
    if (info.arch == "gpt_neox") {
      auto m = io::load_hf<gpt_neox>(path);
      return fn(m, info.arch);
    }
    auto m = io::load_hf<llama>(path);
    return fn(m, info.arch);
  }
  HYENA_CHECK(fs::is_regular_file(path), "model ", path, " not found (expected a checkpoint file, a Hugging Face "
              "folder or a llama2.c .bin)");
  if (fs::path(path).extension() == ".bin") {
    auto m = io::load_llama2c<B, float>(path);
    return fn(m, std::string("llama"));
  }
  const std::string arch = checkpoint_arch(path);
  with_arch(arch, [&](auto tag) {
    auto m = load_model<typename decltype(tag)::type>(path);
    fn(m, arch);
  });
}

}  // namespace hyena::cli
