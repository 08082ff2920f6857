// Fuzzes our training checkpoints (train/checkpoint.hpp): the config metadata, then the model and
// the AdamW state (what --resume reads), for a GPT-NeoX or Llama teacher as hyena.arch says.
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/llama.hpp>
#include <hyena/train/checkpoint.hpp>
#include <hyena/train/param_entry.hpp>

#include "fuzz_util.hpp"

namespace {
template <class Model>
void load(const std::string& path, const hyena::models::model_config& c) {
  Model m(c);
  if (m.parameter_count() > 100000) return;
  hyena::train::adamw<float> opt(hyena::train::param_entries<float>(m.parameters(), m.gradients(), m.config()));
  auto meta = hyena::train::load_checkpoint(path, m, &opt);
  (void)meta;
}
}  // namespace

// HYENA_FUZZ_WRITE_SEEDS=<folder>: write tiny checkpoints (model + AdamW state + resume metadata)
// with the library's own writer, then exit.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace hyena;
  const char* dir = std::getenv("HYENA_FUZZ_WRITE_SEEDS");
  if (!dir) return 0;
  auto write = [&](auto model, const std::string& arch) {
    rng r(1);
    model.init(r);
    train::adamw<float> opt(train::param_entries<float>(model.parameters(), model.gradients(), model.config()));
    train::save_checkpoint(std::string(dir) + "/" + arch + ".safetensors", model, &opt,
                           {{"train.step", "3"}, {"train.seed", "1"}}, arch);
    train::save_checkpoint(std::string(dir) + "/" + arch + "_no_optim.safetensors", model, nullptr, {}, arch);
  };
  write(models::gpt_neox<backend::cpu_ref>(models::gpt_neox_config(16, 8, 1, 2, 16, 8)), "gpt_neox");
  write(models::llama<backend::cpu_ref>(models::llama_config(16, 8, 1, 2, 1, 12, 8)), "llama");
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyena;
  const std::string path = fuzz::write_file("checkpoint.safetensors", fuzz::as_text(data, size));
  try {
    auto f = io::safetensors_file::open(path);
    const auto c = train::checkpoint_config(f);
    if (c.vocab > 4096 || c.hidden > 256 || c.layers > 8 || c.intermediate > 1024 || c.max_seq > 4096) return 0;
    auto it = f.metadata().find("hyena.arch");
    if (it != f.metadata().end() && it->second == "llama")
      load<models::llama<backend::cpu_ref>>(path, c);
    else
      load<models::gpt_neox<backend::cpu_ref>>(path, c);
  } catch (const hyena::error&) {
  }
  return 0;
}
