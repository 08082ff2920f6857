// Hugging Face config.json -> model_config: both spellings, transformers' defaults, and a
// clear error for everything that would not compute the same thing.
#include <doctest/doctest.h>

#include <hyena/io/hf_config.hpp>
#include <hyena/models/config_json.hpp>

#include "safetensors_test_util.hpp"

using namespace hyena;
using nlohmann::json;

namespace {

// Pythia-70M's published config.json.
json pythia_70m() {
  return json::parse(R"({
    "architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu",
    "hidden_size": 512, "initializer_range": 0.02, "intermediate_size": 2048, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 2048, "model_type": "gpt_neox", "num_attention_heads": 8,
    "num_hidden_layers": 6, "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": false,
    "torch_dtype": "float16", "transformers_version": "4.24.0", "use_cache": true,
    "use_parallel_residual": true, "vocab_size": 50304})");
}

// A small GQA Llama in the transformers 4.x spelling.
json llama_gqa() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "hidden_act": "silu", "hidden_size": 256,
    "intermediate_size": 688, "max_position_embeddings": 1024, "model_type": "llama",
    "num_attention_heads": 8, "num_hidden_layers": 3, "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
    "rope_scaling": null, "rope_theta": 500000.0, "tie_word_embeddings": true, "vocab_size": 320,
    "pretraining_tp": 1})");
}

std::string error_of(const json& j) {
  try {
    io::parse_hf_config(j, "dir/config.json");
  } catch (const error& e) {
    return e.what();
  }
  return "(no error)";
}

// The error names the file and every one of `parts`.
void check_error(const json& j, std::initializer_list<const char*> parts) {
  std::string msg = error_of(j);
  INFO(msg);
  CHECK(msg.find("dir/config.json") != std::string::npos);
  for (const char* p : parts) CHECK(msg.find(p) != std::string::npos);
}

}  // namespace

TEST_CASE("hf config: Pythia-70M's published config") {
  auto info = io::parse_hf_config(pythia_70m());
  const auto& c = info.config;
  CHECK(info.arch == "gpt_neox");
  CHECK(c.vocab == 50304);
  CHECK(c.hidden == 512);
  CHECK(c.layers == 6);
  CHECK(c.heads == 8);
  CHECK(c.kv_heads == 8);
  CHECK(c.intermediate == 2048);
  CHECK(c.max_seq == 2048);
  CHECK(c.rotary_pct == 0.25);
  CHECK(c.rotary_base == 10000);
  CHECK(c.norm_eps == 1e-5);
  CHECK(c.parallel_residual);
  CHECK_FALSE(c.tie_embeddings);
  CHECK(c.attention_bias);
  CHECK(c.mlp_bias);
}

TEST_CASE("hf config: gpt_neox defaults are transformers' defaults") {
  json j = pythia_70m();
  for (const char* k : {"rotary_pct", "rotary_emb_base", "layer_norm_eps", "use_parallel_residual",
                        "tie_word_embeddings", "hidden_act"})
    j.erase(k);
  auto c = io::parse_hf_config(j).config;
  CHECK(c.rotary_pct == 0.25);
  CHECK(c.rotary_base == 10000);
  CHECK(c.norm_eps == 1e-5);
  CHECK(c.parallel_residual);
  CHECK_FALSE(c.tie_embeddings);
  j["use_parallel_residual"] = false;
  j["attention_bias"] = false;
  c = io::parse_hf_config(j).config;
  CHECK_FALSE(c.parallel_residual);
  CHECK_FALSE(c.attention_bias);
}

TEST_CASE("hf config: the newer rope_parameters spelling") {
  json j = pythia_70m();
  j.erase("rotary_pct");
  j.erase("rotary_emb_base");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500.0}, {"partial_rotary_factor", 0.5}};
  auto c = io::parse_hf_config(j).config;
  CHECK(c.rotary_pct == 0.5);
  CHECK(c.rotary_base == 500);

  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 20000}};  // fraction: gpt_neox default
  c = io::parse_hf_config(j).config;
  CHECK(c.rotary_pct == 0.25);
  CHECK(c.rotary_base == 20000);

  json k = pythia_70m();  // both spellings, agreeing
  k["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000}, {"partial_rotary_factor", 0.25}};
  CHECK(io::parse_hf_config(k).config.rotary_pct == 0.25);
  k["rope_parameters"]["rope_theta"] = 500;  // disagreeing
  check_error(k, {"rope_parameters.rope_theta", "rotary_emb_base"});

  json l = llama_gqa();
  l.erase("rope_theta");
  l["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 123.0}};
  CHECK(io::parse_hf_config(l).config.rotary_base == 123);
}

TEST_CASE("hf config: Llama with grouped-query attention") {
  auto info = io::parse_hf_config(llama_gqa());
  const auto& c = info.config;
  CHECK(info.arch == "llama");
  CHECK(c.heads == 8);
  CHECK(c.kv_heads == 2);
  CHECK(c.rotary_pct == 1.0);
  CHECK(c.rotary_base == 500000);
  CHECK(c.norm_eps == 1e-5);
  CHECK_FALSE(c.parallel_residual);
  CHECK(c.tie_embeddings);
  CHECK_FALSE(c.attention_bias);
  CHECK_FALSE(c.mlp_bias);

  json j = llama_gqa();
  for (const char* k : {"num_key_value_heads", "rms_norm_eps", "rope_theta", "tie_word_embeddings", "rope_scaling"})
    j.erase(k);
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  j["head_dim"] = 32;
  auto d = io::parse_hf_config(j).config;
  CHECK(d.kv_heads == 8);
  CHECK(d.norm_eps == 1e-6);
  CHECK(d.rotary_base == 10000);
  CHECK_FALSE(d.tie_embeddings);
  CHECK(d.attention_bias);
  CHECK(d.mlp_bias);
}

TEST_CASE("hf config: unsupported or broken configs name the file and the field") {
  for (const char* k : {"hidden_size", "vocab_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                        "max_position_embeddings", "model_type"}) {
    json j = pythia_70m();
    j.erase(k);
    check_error(j, {"missing", k});
  }
  json j = pythia_70m();
  j["model_type"] = "gpt2";
  check_error(j, {"model_type", "gpt2"});
  j = pythia_70m();
  j["hidden_act"] = "relu";
  check_error(j, {"hidden_act", "relu"});
  j["hidden_act"] = "gelu_new";  // the tanh approximation is not what we compute
  check_error(j, {"hidden_act", "gelu_new"});
  j = pythia_70m();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  check_error(j, {"rope_scaling", "linear"});
  j = pythia_70m();
  j["hidden_size"] = "512";
  check_error(j, {"hidden_size", "integer"});
  j = pythia_70m();
  j["num_attention_heads"] = 7;
  check_error(j, {"num_attention_heads"});
  j = pythia_70m();
  j["rotary_pct"] = 0.125 / 8;  // 64 * 1/64 = 1 rotary dim: odd
  check_error(j, {"odd"});
  j = pythia_70m();
  j["rotary_pct"] = 1.5;
  check_error(j, {"rotary"});
  j = pythia_70m();
  j["use_parallel_residual"] = 1;
  check_error(j, {"use_parallel_residual"});

  json l = llama_gqa();
  l["hidden_act"] = "gelu";
  check_error(l, {"hidden_act", "gelu"});
  l = llama_gqa();
  l["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  check_error(l, {"rope_scaling", "llama3"});
  l = llama_gqa();
  l["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 500000.0}};
  check_error(l, {"rope_parameters", "yarn"});
  l = llama_gqa();
  l["partial_rotary_factor"] = 0.5;
  check_error(l, {"partial_rotary_factor"});
  l = llama_gqa();
  l["head_dim"] = 64;
  check_error(l, {"head_dim"});
  l = llama_gqa();
  l["num_key_value_heads"] = 3;
  check_error(l, {"kv_heads"});
  CHECK(error_of(json::array()).find("JSON object") != std::string::npos);
}

TEST_CASE("hf config: read_hf_config names the path") {
  testing::scratch_dir dir;
  auto missing = dir.file("none/config.json");
  CHECK_THROWS_WITH_AS(io::read_hf_config(missing), doctest::Contains(missing.c_str()), error);
  auto bad = dir.file("config.json");
  testing::write_bytes(bad, "{\"model_type\": ");
  CHECK_THROWS_WITH_AS(io::read_hf_config(bad), doctest::Contains("not valid JSON"), error);
  testing::write_bytes(bad, pythia_70m().dump());
  CHECK(io::read_hf_config(bad).config.hidden == 512);
}

TEST_CASE("hf config: hf_config_json round-trips through parse_hf_config") {
  auto neox = io::parse_hf_config(pythia_70m()).config;
  neox.rotary_base = 500;
  neox.parallel_residual = false;
  auto back = io::parse_hf_config(io::hf_config_json(neox, "gpt_neox"));
  CHECK(back.arch == "gpt_neox");
  CHECK(models::to_json(back.config) == models::to_json(neox));

  auto llama = io::parse_hf_config(llama_gqa()).config;
  llama.mlp_bias = true;
  auto lb = io::parse_hf_config(io::hf_config_json(llama, "llama"));
  CHECK(lb.arch == "llama");
  CHECK(models::to_json(lb.config) == models::to_json(llama));

  CHECK_THROWS_WITH_AS(io::hf_config_json(llama, "gpt_neox"), doctest::Contains("kv_heads"), error);
  CHECK_THROWS_WITH_AS(io::hf_config_json(neox, "llama"), doctest::Contains("full head"), error);
  CHECK_THROWS_WITH_AS(io::hf_config_json(neox, "gpt2"), doctest::Contains("gpt2"), error);
}
