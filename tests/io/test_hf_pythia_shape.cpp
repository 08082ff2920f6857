// A Pythia-70M-shaped GPT-NeoX (6 layers, 512 wide, 8 heads, vocab 50304, rotary 25%)
// loaded through the HF loader reproduces transformers' logits. Its 280 MB of weights are
// not committed: both sides compute them from formula_value() (the same definition as
// formula_weight() in tests/reference/hf_tiny_golden.py), this test writes them in HF
// layout (config.json + model.safetensors) to a temp folder, loads, and compares the
// sampled logits of pythia70m_shape_logits.json and the argmax at every position.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <hyena/io/hf_checkpoint.hpp>
#include <hyena/models/gpt_neox.hpp>

#include "../support/fixture.hpp"
#include "safetensors_test_util.hpp"

using namespace hyena;

namespace {

std::uint32_t fnv1a32(const std::string& s) {
  std::uint32_t h = 2166136261u;
  for (unsigned char b : s) h = (h ^ b) * 16777619u;
  return h;
}

// Element i of HF tensor `name` (row-major, HF layout), `in` its row length:
//   u = ((fnv1a32(name) ^ (i * 2654435761 mod 2^32)) & 0xffffff) / 2^24,  r = 2u - 1
//   bias: 0.1 r;  norm weight: 1 + 0.2 r;  embed_in: r;  other (out, in) matrices: r sqrt(3 / in)
// in double, rounded to float.
std::vector<float> formula_tensor(const std::string& name, index_t n, index_t in) {
  const std::uint32_t h = fnv1a32(name);
  const bool bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
  const bool norm = name.find("norm") != std::string::npos, embed = name.find("embed_in") != std::string::npos;
  const double scale = std::sqrt(3.0 / static_cast<double>(in));
  std::vector<float> out(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    const std::uint32_t mix = static_cast<std::uint32_t>(i) * 2654435761u;
    const double u = static_cast<double>((h ^ mix) & 0xffffffu) / static_cast<double>(1u << 24);
    const double r = 2.0 * u - 1.0;
    out[static_cast<std::size_t>(i)] =
        static_cast<float>(bias ? 0.1 * r : norm ? 1.0 + 0.2 * r : embed ? r : r * scale);
  }
  return out;
}

// Writes the HF folder: tensor names and shapes listed here from GPT-NeoX's layout, not
// taken from the loader's own mapping.
void write_pythia_shaped(const std::string& folder, const models::model_config& c) {
  const index_t V = c.vocab, H = c.hidden, I = c.intermediate;
  std::vector<std::pair<std::string, std::vector<index_t>>> specs = {{"gpt_neox.embed_in.weight", {V, H}}};
  for (index_t l = 0; l < c.layers; ++l) {
    const std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
    for (const char* ln : {"input_layernorm.", "post_attention_layernorm."}) {
      specs.push_back({p + ln + "weight", {H}});
      specs.push_back({p + ln + "bias", {H}});
    }
    specs.push_back({p + "attention.query_key_value.weight", {3 * H, H}});
    specs.push_back({p + "attention.query_key_value.bias", {3 * H}});
    specs.push_back({p + "attention.dense.weight", {H, H}});
    specs.push_back({p + "attention.dense.bias", {H}});
    specs.push_back({p + "mlp.dense_h_to_4h.weight", {I, H}});
    specs.push_back({p + "mlp.dense_h_to_4h.bias", {I}});
    specs.push_back({p + "mlp.dense_4h_to_h.weight", {H, I}});
    specs.push_back({p + "mlp.dense_4h_to_h.bias", {H}});
  }
  specs.push_back({"gpt_neox.final_layer_norm.weight", {H}});
  specs.push_back({"gpt_neox.final_layer_norm.bias", {H}});
  specs.push_back({"embed_out.weight", {V, H}});

  std::vector<std::vector<float>> data;
  data.reserve(specs.size());
  io::safetensors_writer w;
  for (const auto& [name, shape] : specs) {
    index_t n = 1;
    for (index_t d : shape) n *= d;
    data.push_back(formula_tensor(name, n, shape.back()));
    w.add(name, shape, data.back().data());
  }
  w.add_metadata("format", "pt");
  std::filesystem::create_directories(folder);
  w.write(folder + "/model.safetensors");
  std::ofstream(folder + "/config.json") << io::hf_config_json(c, "gpt_neox").dump(2);
}

}  // namespace

TEST_CASE("hf pythia shape: formula weights match the Python definition") {
  CHECK(fnv1a32("") == 2166136261u);
  CHECK(fnv1a32("a") == 0xe40c292cu);  // the FNV-1a test vector
  // Bit patterns of float32 values that formula_weight() in hf_tiny_golden.py gives.
  auto bits = [](const std::string& name, index_t n, index_t in, index_t i) {
    float v = formula_tensor(name, n, in)[static_cast<std::size_t>(i)];
    std::uint32_t b;
    std::memcpy(&b, &v, 4);
    return b;
  };
  const std::string dense = "gpt_neox.layers.0.attention.dense.weight";
  CHECK(bits(dense, 512 * 512, 512, 0) == 3181032892u);
  CHECK(bits(dense, 512 * 512, 512, 1) == 3174249130u);
  CHECK(bits(dense, 512 * 512, 512, 123456) == 1033363117u);
  CHECK(bits("embed_out.weight", 50304 * 512, 512, 25755647) == 3141654191u);
  CHECK(bits("gpt_neox.layers.5.input_layernorm.weight", 512, 512, 7) == 1066309955u);
  CHECK(bits("gpt_neox.layers.2.mlp.dense_h_to_4h.bias", 2048, 2048, 2047) == 1026901898u);
}

TEST_CASE("hf pythia shape: Pythia-70M-shaped logits match transformers") {
  auto fx = testing::fixture::load("pythia70m_shape_logits.json");
  std::vector<std::int32_t> prompt;
  for (auto& t : fx.meta.at("tokens")) prompt.push_back(t.get<std::int32_t>());
  const index_t stride = fx.meta.at("vocab_stride").get<index_t>(), seq = static_cast<index_t>(prompt.size());

  testing::scratch_dir dir;
  const std::string folder = dir.file("pythia70m_shape");
  write_pythia_shaped(folder, models::pythia_70m_config());

  auto info = io::hf_model_config(folder);
  CHECK(info.arch == "gpt_neox");
  auto m = io::load_hf<models::gpt_neox<backend::cpu>>(folder, /*max_seq=*/64);
  std::filesystem::remove_all(folder);  // 280 MB: gone as soon as it is loaded

  tensor<std::int32_t> tokens({1, seq});
  std::copy(prompt.begin(), prompt.end(), tokens.data());
  backend::host_context ctx;
  m.reserve(1, seq, models::mode::infer);
  auto logits = m.forward(ctx, tokens.v());
  const index_t V = m.config().vocab;

  auto want = fx.values<double>("logits");
  auto argmax = fx.values<double>("argmax");
  const index_t sampled = (V + stride - 1) / stride;
  REQUIRE(static_cast<index_t>(want.size()) == seq * sampled);
  double err = 0, biggest = 0;
  for (index_t s = 0; s < seq; ++s) {
    const float* row = logits.data + s * V;
    for (index_t k = 0; k < sampled; ++k) {
      err = std::max(err, std::abs(double(row[k * stride]) - want[s * sampled + k]));
      biggest = std::max(biggest, std::abs(want[s * sampled + k]));
    }
    INFO("position ", s);
    CHECK(std::max_element(row, row + V) - row == static_cast<index_t>(argmax[s]));
  }
  INFO("max |logit| ", biggest);
  CHECK(err <= 1e-4);
  CHECK(biggest > 1);  // the comparison is not of near-zero numbers
}
