// Fuzzes config.json of both architectures (GPT-NeoX and Llama, both spellings): the JSON text
// to parse_hf_config. Accepted configs must validate and survive a round trip through
// hf_config_json (the writer hyena uses for save_hf).
#include <hyena/io/hf_config.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyena;
  const auto text = fuzz::as_text(data, size);
  const std::string path = fuzz::write_file("config.json", text);
  try {
    const auto info = io::read_hf_config(path);
    info.config.validate();
    const auto again = io::parse_hf_config(io::hf_config_json(info.config, info.arch), "round trip");
    FUZZ_CHECK(again.arch == info.arch, "architecture survives the round trip");
    FUZZ_CHECK(again.config.hidden == info.config.hidden && again.config.layers == info.config.layers &&
                   again.config.kv_heads == info.config.kv_heads && again.config.mlp_bias == info.config.mlp_bias &&
                   again.config.attention_bias == info.config.attention_bias,
               "sizes and biases survive the round trip");
  } catch (const hyena::error&) {
  }
  return 0;
}
