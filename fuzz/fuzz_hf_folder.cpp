// Fuzzes a whole Hugging Face folder: config.json and model.safetensors (the input split at the
// line "#model.safetensors\n"), loaded into the model the config names (GPT-NeoX or Llama, small
// ones only). Exercises the tensor audit: every file tensor read or refused, shapes and dtypes checked.
#include <hyena/io/hf_checkpoint.hpp>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/llama.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyena;
  const auto [config, weights] = fuzz::split2(fuzz::as_text(data, size), "#model.safetensors\n");
  const auto folder = fuzz::scratch_folder() / "hf";
  std::filesystem::create_directories(folder);
  fuzz::write_file("hf/config.json", config);
  fuzz::write_file("hf/model.safetensors", weights);
  try {
    const auto info = io::hf_model_config(folder.string());
    const auto& c = info.config;
    if (c.vocab > 512 || c.hidden > 64 || c.layers > 4 || c.intermediate > 256) return 0;
    if (info.arch == "llama") {
      auto m = io::load_hf<models::llama<backend::cpu_ref>>(folder.string(), 8);
      (void)m;
    } else {
      auto m = io::load_hf<models::gpt_neox<backend::cpu_ref>>(folder.string(), 8);
      (void)m;
    }
  } catch (const hyena::error&) {
  }
  return 0;
}
