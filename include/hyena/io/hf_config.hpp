// io/hf_config.hpp: a Hugging Face config.json (GPT-NeoX / Pythia, Llama) <-> model_config.
//
// Both spellings are read: the published one (GPT-NeoX: rotary_pct, rotary_emb_base; Llama:
// rope_theta, rope_scaling) and the newer transformers one (rope_parameters {rope_type,
// rope_theta, partial_rotary_factor}). Absent optional fields take transformers' defaults,
// so a config means here what it means there. Anything we cannot compute exactly (rope
// scaling, another activation, an odd rotary width) is a hyena::error naming the field:
// loading it anyway would give different logits without a word.
#pragma once
#include <algorithm>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

#include "../models/config.hpp"
#include "../nn/rotary.hpp"

namespace hyena::io {

struct hf_model_info {
  std::string arch;  // "gpt_neox" or "llama"
  models::model_config config;
};

namespace hf_detail {

// Field access with messages that name the file and the field.
struct json_fields {
  const nlohmann::json& j;
  const std::string& source;

  bool has(const char* key) const { return j.contains(key) && !j.at(key).is_null(); }
  const nlohmann::json& at(const char* key) const {
    HYENA_CHECK(has(key), source, ": missing required field '", key, "'");
    return j.at(key);
  }
  index_t integer(const char* key) const {
    const auto& v = at(key);
    HYENA_CHECK(v.is_number_integer(), source, ": field '", key, "' must be an integer, got ", v.dump());
    return v.get<index_t>();
  }
  index_t integer(const char* key, index_t fallback) const { return has(key) ? integer(key) : fallback; }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const auto& v = j.at(key);
    HYENA_CHECK(v.is_number(), source, ": field '", key, "' must be a number, got ", v.dump());
    return v.get<double>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const auto& v = j.at(key);
    HYENA_CHECK(v.is_boolean(), source, ": field '", key, "' must be true or false, got ", v.dump());
    return v.get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const auto& v = j.at(key);
    HYENA_CHECK(v.is_string(), source, ": field '", key, "' must be a string, got ", v.dump());
    return v.get<std::string>();
  }
};

// One value that several spellings may give (rope_parameters.<key> included): every one
// present must agree; none present gives `fallback`.
inline double read_alias(const json_fields& f, std::initializer_list<const char*> keys, const char* nested,
                         double fallback) {
  std::string first;  // the spelling that gave `value`
  double value = fallback;
  auto take = [&](const json_fields& g, const char* key, const std::string& label) {
    if (!g.has(key)) return;
    double v = g.number(key, 0);
    HYENA_CHECK(first.empty() || std::abs(v - value) <= 1e-12 * std::max(1.0, std::abs(v)), f.source, ": ", label,
                " ", v, " disagrees with ", first, " ", value);
    if (first.empty()) first = label, value = v;
  };
  for (const char* k : keys) take(f, k, k);
  if (f.has("rope_parameters"))
    take(json_fields{f.j.at("rope_parameters"), f.source}, nested, std::string("rope_parameters.") + nested);
  return value;
}

// Rotary fraction and base from either spelling. transformers 4.x: rotary_pct / rotary_emb_base
// (GPT-NeoX), rope_theta (Llama), rope_scaling; 5.x: rope_parameters {rope_type, rope_theta,
// partial_rotary_factor}.
inline void read_rope(const json_fields& f, double pct_default, models::model_config& c) {
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (!f.has(key)) continue;
    const auto& r = f.j.at(key);
    HYENA_CHECK(r.is_object(), f.source, ": field '", key, "' must be an object or null, got ", r.dump());
    json_fields g{r, f.source};
    std::string t = g.string("rope_type", g.string("type", "default"));
    HYENA_CHECK(t == "default", f.source, ": ", key, ".rope_type '", t,
                "' is not supported (only 'default' rotary embeddings)");
  }
  c.rotary_pct = read_alias(f, {"rotary_pct", "partial_rotary_factor"}, "partial_rotary_factor", pct_default);
  c.rotary_base = read_alias(f, {"rotary_emb_base", "rope_theta"}, "rope_theta", 10000.0);
  HYENA_CHECK(c.rotary_pct >= 0 && c.rotary_pct <= 1, f.source, ": rotary fraction ", c.rotary_pct, " not in [0, 1]");
  HYENA_CHECK(c.rotary_base > 0, f.source, ": rope_theta ", c.rotary_base, " must be positive");
}

inline void read_sizes(const json_fields& f, models::model_config& c) {
  c.vocab = f.integer("vocab_size");
  c.hidden = f.integer("hidden_size");
  c.layers = f.integer("num_hidden_layers");
  c.heads = f.integer("num_attention_heads");
  c.intermediate = f.integer("intermediate_size");
  c.max_seq = f.integer("max_position_embeddings");
  HYENA_CHECK(c.heads > 0 && c.hidden % c.heads == 0, f.source, ": hidden_size ", c.hidden,
              " is not a multiple of num_attention_heads ", c.heads);
}

}  // namespace hf_detail

// config.json contents -> architecture + model_config; `source` names the file in errors.
inline hf_model_info parse_hf_config(const nlohmann::json& j, const std::string& source = "config.json") {
  using namespace hf_detail;
  HYENA_CHECK(j.is_object(), source, ": expected a JSON object");
  json_fields f{j, source};
  const std::string type = f.string("model_type", "");
  HYENA_CHECK(!type.empty(), source, ": missing required field 'model_type'");
  hf_model_info out;
  models::model_config& c = out.config;
  if (type == "gpt_neox") {
    out.arch = "gpt_neox";
    read_sizes(f, c);
    c.kv_heads = c.heads;
    const std::string act = f.string("hidden_act", "gelu");
    HYENA_CHECK(act == "gelu", source, ": hidden_act '", act, "' is not supported for gpt_neox (only 'gelu')");
    read_rope(f, 0.25, c);
    c.norm_eps = f.number("layer_norm_eps", 1e-5);
    c.parallel_residual = f.boolean("use_parallel_residual", true);
    c.tie_embeddings = f.boolean("tie_word_embeddings", false);
    c.attention_bias = f.boolean("attention_bias", true);
    c.mlp_bias = true;
  } else if (type == "llama") {
    out.arch = "llama";
    read_sizes(f, c);
    c.kv_heads = f.integer("num_key_value_heads", c.heads);
    if (f.has("head_dim"))
      HYENA_CHECK(f.integer("head_dim") == c.hidden / c.heads, source, ": head_dim ", f.integer("head_dim"),
                  " differs from hidden_size / num_attention_heads = ", c.hidden / c.heads, " (not supported)");
    const std::string act = f.string("hidden_act", "silu");
    HYENA_CHECK(act == "silu", source, ": hidden_act '", act, "' is not supported for llama (only 'silu')");
    read_rope(f, 1.0, c);
    HYENA_CHECK(c.rotary_pct == 1.0, source, ": partial_rotary_factor ", c.rotary_pct,
                " is not supported for llama (it rotates the full head)");
    c.norm_eps = f.number("rms_norm_eps", 1e-6);
    c.parallel_residual = false;
    c.tie_embeddings = f.boolean("tie_word_embeddings", false);
    c.attention_bias = f.boolean("attention_bias", false);
    c.mlp_bias = f.boolean("mlp_bias", false);
  } else {
    HYENA_FAIL(source, ": model_type '", type, "' is not supported (expected 'gpt_neox' or 'llama')");
  }
  // transformers takes int(head_dim * fraction) rotary dims; ours rounds down to even.
  const index_t hd = c.hidden / c.heads;
  const auto hf_rot = static_cast<index_t>(static_cast<double>(hd) * c.rotary_pct);
  HYENA_CHECK(hf_rot % 2 == 0, source, ": rotary fraction ", c.rotary_pct, " of head_dim ", hd, " gives ", hf_rot,
              " rotary dims, an odd number (not supported)");
  try {
    c.validate();
  } catch (const error& e) {
    HYENA_FAIL(source, ": ", e.what());
  }
  return out;
}

// Reads and parses the config.json at `path`.
inline hf_model_info read_hf_config(const std::string& path) {
  std::ifstream in(path);
  HYENA_CHECK(in.good(), path, ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    HYENA_FAIL(path, ": not valid JSON: ", e.what());
  }
  return parse_hf_config(j, path);
}

// A config.json for `c` in the published spelling (transformers 4.x reads it; so do we).
inline nlohmann::json hf_config_json(const models::model_config& c, const std::string& arch) {
  c.validate();
  const index_t hd = c.head_dim(), rot = nn::rotary_config::dims_for(hd, c.rotary_pct);
  nlohmann::json j;
  j["vocab_size"] = c.vocab;
  j["hidden_size"] = c.hidden;
  j["num_hidden_layers"] = c.layers;
  j["num_attention_heads"] = c.heads;
  j["intermediate_size"] = c.intermediate;
  j["max_position_embeddings"] = c.max_seq;
  j["tie_word_embeddings"] = c.tie_embeddings;
  j["rope_scaling"] = nullptr;
  j["torch_dtype"] = "float32";
  if (arch == "gpt_neox") {
    HYENA_CHECK(c.kv_heads == c.heads, "hf config: gpt_neox has no grouped-query attention (kv_heads ", c.kv_heads,
                " != heads ", c.heads, ")");
    HYENA_CHECK(c.mlp_bias, "hf config: gpt_neox MLPs always have biases (mlp_bias is false)");
    j["architectures"] = {"GPTNeoXForCausalLM"};
    j["model_type"] = "gpt_neox";
    j["hidden_act"] = "gelu";
    j["rotary_pct"] = static_cast<double>(rot) / static_cast<double>(hd);  // exact for the dims we use
    j["rotary_emb_base"] = c.rotary_base;
    j["layer_norm_eps"] = c.norm_eps;
    j["use_parallel_residual"] = c.parallel_residual;
    j["attention_bias"] = c.attention_bias;
  } else if (arch == "llama") {
    HYENA_CHECK(rot == hd, "hf config: llama rotates the full head (rotary_pct is ", c.rotary_pct, ")");
    HYENA_CHECK(!c.parallel_residual, "hf config: llama has no parallel residual");
    j["architectures"] = {"LlamaForCausalLM"};
    j["model_type"] = "llama";
    j["hidden_act"] = "silu";
    j["num_key_value_heads"] = c.kv_heads;
    j["rope_theta"] = c.rotary_base;
    j["rms_norm_eps"] = c.norm_eps;
    j["attention_bias"] = c.attention_bias;
    j["mlp_bias"] = c.mlp_bias;
    j["pretraining_tp"] = 1;
  } else {
    HYENA_FAIL("hf config: unknown architecture '", arch, "' (expected 'gpt_neox' or 'llama')");
  }
  return j;
}

}  // namespace hyena::io
