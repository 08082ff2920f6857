// Llama with biases, and nothing dropped silently: the mlp_bias case of ../shared/cases and
// transformers-made fixtures with attention_bias (tests/reference/hf_llama_bias_golden.py,
// transformers 4.44) reproduce HF's logits; a folder holding a tensor the config does not
// explain, or a config field hyena does not compute, is refused by name.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <hyena/io/hf_checkpoint.hpp>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/llama.hpp>
#include <map>
#include <nlohmann/json.hpp>

#include "safetensors_test_util.hpp"
#include "support/cases_dir.hpp"
#include "support/fixture.hpp"

using namespace hyena;
namespace fs = std::filesystem;
using llama_cpu = models::llama<backend::cpu>;

namespace {

std::string fixture_dir(const std::string& name) {
  return std::string(HYENA_TEST_SOURCE_DIR) + "/reference/fixtures/" + name;
}

// Logits of `tokens` from the model in `folder`, as one flat vector.
template <class Model>
std::vector<double> logits_of(const std::string& folder, const std::vector<std::int32_t>& ids) {
  auto m = io::load_hf<Model>(folder);
  tensor<std::int32_t> tokens({1, static_cast<index_t>(ids.size())});
  std::copy(ids.begin(), ids.end(), tokens.data());
  typename Model::context ctx;
  m.reserve(1, tokens.numel(), models::mode::infer);
  auto logits = m.forward(ctx, tokens.v());
  return std::vector<double>(logits.data, logits.data + logits.numel());
}

double max_error(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double e = 0;
  for (std::size_t i = 0; i < a.size(); ++i) e = std::max(e, std::abs(a[i] - b[i]));
  return e;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const error& e) {
    return e.what();
  }
  return "(no error)";
}

// Max |ours - HF| for a fixture folder written by hf_llama_bias_golden.py.
template <class Model>
double fixture_error(const std::string& name) {
  auto fx = testing::fixture::load(name + "/logits.json");
  std::vector<std::int32_t> ids;
  for (double t : fx.values<double>("tokens")) ids.push_back(static_cast<std::int32_t>(t));
  return max_error(logits_of<Model>(fixture_dir(name), ids), fx.values<double>("logits"));
}

}  // namespace

TEST_CASE("hf llama: mlp_bias (gate/up/down_proj biases) gives transformers' logits (shared case)") {
  const std::string dir = testing::cases_dir("llama-mlp-bias");
  if (dir.empty()) return;
  auto info = io::hf_model_config(dir);
  CHECK(info.config.mlp_bias);
  CHECK_FALSE(info.config.attention_bias);
  std::ifstream in(dir + "/expected_logits.json");
  const auto j = nlohmann::json::parse(in);
  std::vector<std::int32_t> ids = j.at("tokens").get<std::vector<std::int32_t>>();
  std::vector<double> want;
  for (const auto& row : j.at("logits"))
    for (const auto& v : row) want.push_back(v.get<double>());
  const double err = max_error(logits_of<llama_cpu>(dir, ids), want);
  MESSAGE("llama-mlp-bias: max |logit error| ", err);
  CHECK(err <= 1e-4);
  CHECK(max_error(logits_of<models::llama<backend::cpu_ref>>(dir, ids), want) <= 1e-4);
}

TEST_CASE("hf llama: attention_bias, and both biases, give transformers' logits") {
  CHECK(io::hf_model_config(fixture_dir("hf_tiny_llama_attn_bias")).config.attention_bias);
  CHECK(fixture_error<llama_cpu>("hf_tiny_llama_attn_bias") <= 1e-4);
  CHECK(fixture_error<models::llama<backend::cpu_ref>>("hf_tiny_llama_attn_bias") <= 1e-4);
  CHECK(fixture_error<llama_cpu>("hf_tiny_llama_both_bias") <= 1e-4);
}

TEST_CASE("hf llama: save_hf writes the biases back and transformers' spelling reads them") {
  testing::scratch_dir dir;
  auto m = io::load_hf<llama_cpu>(fixture_dir("hf_tiny_llama_both_bias"));
  io::save_hf(dir.file("out"), m, "llama");
  auto f = io::safetensors_file::open(dir.file("out/model.safetensors"));
  for (const char* n : {"model.layers.1.mlp.gate_proj.bias", "model.layers.1.mlp.down_proj.bias",
                        "model.layers.0.self_attn.o_proj.bias", "model.layers.0.self_attn.k_proj.bias"})
    CHECK(f.has(n));
  CHECK(fixture_error<llama_cpu>("hf_tiny_llama_both_bias") <= 1e-4);
  auto fx = testing::fixture::load("hf_tiny_llama_both_bias/logits.json");
  std::vector<std::int32_t> ids;
  for (double t : fx.values<double>("tokens")) ids.push_back(static_cast<std::int32_t>(t));
  CHECK(max_error(logits_of<llama_cpu>(dir.file("out"), ids), fx.values<double>("logits")) <= 1e-4);
}

TEST_CASE("hf checkpoint: a tensor the config does not explain is an error naming it") {
  testing::scratch_dir dir;
  SUBCASE("mlp biases present, config without mlp_bias") {
    fs::copy(fixture_dir("hf_tiny_llama_both_bias"), dir.path / "m", fs::copy_options::recursive);
    auto cfg = nlohmann::json::parse(std::ifstream(dir.file("m/config.json")));
    cfg["mlp_bias"] = false;
    std::ofstream(dir.file("m/config.json")) << cfg.dump(2);
    const std::string msg = error_of([&] { io::load_hf<llama_cpu>(dir.file("m")); });
    INFO(msg);
    CHECK(msg.find("tensor 'model.layers.0.mlp.down_proj.bias' is not used") != std::string::npos);
    CHECK(msg.find("model.safetensors") != std::string::npos);
  }
  SUBCASE("attention biases present, config without attention_bias") {
    fs::copy(fixture_dir("hf_tiny_llama_attn_bias"), dir.path / "m", fs::copy_options::recursive);
    auto cfg = nlohmann::json::parse(std::ifstream(dir.file("m/config.json")));
    cfg.erase("attention_bias");
    std::ofstream(dir.file("m/config.json")) << cfg.dump(2);
    const std::string msg = error_of([&] { io::load_hf<llama_cpu>(dir.file("m")); });
    INFO(msg);
    CHECK(msg.find("self_attn.") != std::string::npos);
    CHECK(msg.find("_proj.bias' is not used") != std::string::npos);
  }
  SUBCASE("an extra tensor; known buffers are fine") {
    auto src = io::safetensors_file::open(fixture_dir("hf_tiny_llama/model.safetensors"));
    auto write = [&](const std::vector<std::string>& extra) {
      fs::create_directories(dir.path / "m");
      fs::copy_file(fixture_dir("hf_tiny_llama/config.json"), dir.path / "m/config.json",
                    fs::copy_options::overwrite_existing);
      io::safetensors_writer w;
      std::vector<tensor<float>> keep;
      for (const auto& n : src.names()) {
        keep.push_back(src.load<float>(n));
        w.add(n, keep.back());
      }
      float one[4] = {1, 2, 3, 4};
      for (const auto& n : extra) w.add(n, {4}, one);
      w.write(dir.file("m/model.safetensors"));
    };
    // transformers 4.31 saved the rotary inv_freq buffers: known, not parameters.
    CHECK(src.has("model.layers.0.self_attn.rotary_emb.inv_freq"));
    write({});
    CHECK_NOTHROW(io::load_hf<llama_cpu>(dir.file("m")));
    write({"model.layers.0.mlp.extra_scale"});
    const std::string msg = error_of([&] { io::load_hf<llama_cpu>(dir.file("m")); });
    CHECK_MESSAGE(msg.find("tensor 'model.layers.0.mlp.extra_scale' is not used by the llama model") !=
                      std::string::npos,
                  msg);
  }
}

TEST_CASE("hf config: every field is computed, harmless, neutral or refused by name") {
  auto parse = [](const nlohmann::json& j) { return io::parse_hf_config(j, "dir/config.json"); };
  auto base = nlohmann::json::parse(std::ifstream(fixture_dir("hf_tiny_llama/config.json")));
  CHECK_NOTHROW(parse(base));
  auto with = [&](const char* k, nlohmann::json v) {
    auto j = base;
    j[k] = std::move(v);
    return error_of([&] { parse(j); });
  };
  // Harmless: dropout, generation settings, token ids, the attention kernel.
  CHECK(with("attention_dropout", 0.1) == "(no error)");
  CHECK(with("temperature", 0.7) == "(no error)");
  CHECK(with("_attn_implementation", "sdpa") == "(no error)");
  CHECK(with("pretraining_tp", 2) == "(no error)");
  CHECK(with("pruned_heads", nlohmann::json::object()) == "(no error)");
  // Refused by name.
  CHECK(with("sliding_window", 4096).find("field 'sliding_window' (4096) is not known") != std::string::npos);
  CHECK(with("quantization_config", {{"bits", 4}}).find("'quantization_config' is not supported") !=
        std::string::npos);
  CHECK(with("pruned_heads", {{"0", {1}}}).find("pruned_heads") != std::string::npos);
  CHECK(with("is_encoder_decoder", true).find("is_encoder_decoder") != std::string::npos);
  CHECK(with("auto_map", {{"AutoModel", "x.Y"}}).find("auto_map") != std::string::npos);
  CHECK(with("pretraining_tp", 0).find("pretraining_tp") != std::string::npos);
  CHECK(with("rope_scaling", {{"rope_type", "linear"}, {"factor", 2.0}}).find("rope_scaling.rope_type 'linear'") !=
        std::string::npos);
  // Every message names the file.
  CHECK(with("sliding_window", 1).find("dir/config.json") != std::string::npos);
}

namespace {
// A copy of fixture `name` with its config edited by `edit` and tensors added / replaced.
std::string variant(const testing::scratch_dir& dir, const std::string& name,
                    const std::function<void(nlohmann::json&)>& edit,
                    const std::map<std::string, const tensor<float>*>& extra) {
  const fs::path out = dir.path / (name + "_variant");
  fs::create_directories(out);
  auto cfg = nlohmann::json::parse(std::ifstream(fixture_dir(name) + "/config.json"));
  edit(cfg);
  std::ofstream(out / "config.json") << cfg.dump(2);
  auto src = io::safetensors_file::open(fixture_dir(name) + "/model.safetensors");
  io::safetensors_writer w;
  std::vector<tensor<float>> keep;
  for (const auto& n : src.names())
    if (!extra.count(n)) {
      keep.push_back(src.load<float>(n));
      w.add(n, keep.back());
    }
  for (const auto& [n, t] : extra) w.add(n, *t);
  w.write((out / "model.safetensors").string());
  return out.string();
}
}  // namespace

TEST_CASE("hf checkpoint: GPT-NeoX causal-mask buffers are known; tied lm_head must equal the embedding") {
  testing::scratch_dir dir;
  using neox = models::gpt_neox<backend::cpu>;
  tensor<float> mask({1, 1, 4, 4}), scalar({1});
  auto none = [](nlohmann::json&) {};
  // Older transformers saved attention.bias (the causal mask) and attention.masked_bias.
  const auto with_buffers = variant(dir, "hf_tiny_neox", none,
                                    {{"gpt_neox.layers.0.attention.bias", &mask},
                                     {"gpt_neox.layers.1.attention.masked_bias", &scalar}});
  CHECK_NOTHROW(io::load_hf<neox>(with_buffers));
  const auto with_extra = variant(dir, "hf_tiny_neox", none, {{"gpt_neox.layers.0.attention.scale", &scalar}});
  CHECK_THROWS_WITH_AS(io::load_hf<neox>(with_extra),
                       doctest::Contains("tensor 'gpt_neox.layers.0.attention.scale' is not used"), hyena::error);

  // Llama with tie_word_embeddings: an lm_head.weight in the file is accepted only as a copy.
  auto src = io::safetensors_file::open(fixture_dir("hf_tiny_llama") + "/model.safetensors");
  auto embed = src.load<float>("model.embed_tokens.weight");
  auto tie = [](nlohmann::json& c) { c["tie_word_embeddings"] = true; };
  const auto tied_copy = variant(dir, "hf_tiny_llama", tie, {{"lm_head.weight", &embed}});
  CHECK_NOTHROW(io::load_hf<llama_cpu>(tied_copy));
  auto other = src.load<float>("lm_head.weight");
  const auto tied_other = variant(dir, "hf_tiny_llama", tie, {{"lm_head.weight", &other}});
  CHECK_THROWS_WITH_AS(io::load_hf<llama_cpu>(tied_other), doctest::Contains("differs from 'model.embed_tokens.weight'"),
                       hyena::error);
}
