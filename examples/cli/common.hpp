// common.hpp: what the `hyena` subcommands share: presets, contexts and the data folder, and
// (models.hpp) the model types the CLI knows and loading a model from any format.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <type_traits>

#include "models.hpp"

namespace hyena::cli {

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

}  // namespace hyena::cli
