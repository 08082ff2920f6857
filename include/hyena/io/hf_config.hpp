// io/hf_config.hpp: a Hugging Face config.json (GPT-NeoX / Pythia, Llama) <-> model_config.
//
// Both spellings are read: the published one (GPT-NeoX: rotary_pct, rotary_emb_base; Llama:
// rope_theta, rope_scaling) and the newer transformers one (rope_parameters {rope_type,
// rope_theta, partial_rotary_factor}). Absent optional fields take transformers' defaults,
// so a config means here what it means there. Anything we cannot compute exactly (rope
// scaling, another activation, an odd rotary width) is a hyena::error naming the field:
// loading it anyway would give different logits without a word.
//
// Every field of a config is accounted for (hf_detail::audit_fields): each one is either read
// into model_config, or listed as not changing the logits (token ids, generation defaults,
// training-only settings such as dropout and initializer_range, bookkeeping), or allowed only at
// its neutral value (pruned_heads {}, is_encoder_decoder false, ...). Any other field - one a
// newer transformers or a fork added - is refused by name, since it may change the computation.
#pragma once
#include <algorithm>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <set>
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

// Fields that do not change the logits of a forward pass: bookkeeping, token ids, generation
// defaults, output switches, training-only settings (dropout, initialisation), the attention
// kernel choice, and pretraining_tp (Llama: the same products, computed in slices).
inline bool harmless_field(const std::string& k) {
  static const std::set<std::string> names = {
      "architectures", "model_type", "transformers_version", "_name_or_path", "name_or_path", "_commit_hash",
      "torch_dtype", "dtype", "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id",
      "decoder_start_token_id", "initializer_range", "attention_dropout", "hidden_dropout", "classifier_dropout",
      "use_cache", "return_dict", "output_hidden_states", "output_attentions", "torchscript", "use_return_dict",
      "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups",
      "diversity_penalty", "temperature", "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty",
      "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences",
      "output_scores", "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id",
      "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens",
      "chunk_size_feed_forward", "id2label", "label2id", "num_labels", "problem_type", "finetuning_task",
      "tokenizer_class", "prefix", "task_specific_params", "tf_legacy_loss", "use_bfloat16",
      "_attn_implementation", "attn_implementation", "_attn_implementation_autoset", "pretraining_tp",
      "is_decoder", "cross_attention_hidden_size", "gradient_checkpointing"};
  return names.count(k) != 0;
}

// Fields allowed only at the value that leaves the computation unchanged.
inline void check_neutral_fields(const json_fields& f) {
  for (const char* k : {"is_encoder_decoder", "add_cross_attention", "tie_encoder_decoder"})
    HYENA_CHECK(!f.boolean(k, false), f.source, ": field '", k, "' is true (not supported: decoder-only models)");
  if (f.has("pruned_heads")) {
    const auto& v = f.j.at("pruned_heads");
    HYENA_CHECK(v.is_object() && v.empty(), f.source, ": field 'pruned_heads' is ", v.dump(),
                " (pruned attention heads are not supported)");
  }
}

// Refuses every field that is neither read (`computed`) nor harmless nor neutral.
inline void audit_fields(const json_fields& f, const std::string& arch, std::initializer_list<const char*> computed) {
  check_neutral_fields(f);
  static const std::set<std::string> neutral = {"is_encoder_decoder", "add_cross_attention", "tie_encoder_decoder",
                                                "pruned_heads"};
  for (auto it = f.j.begin(); it != f.j.end(); ++it) {
    const std::string& k = it.key();
    if (harmless_field(k) || neutral.count(k)) continue;
    if (std::find_if(computed.begin(), computed.end(), [&](const char* c) { return k == c; }) != computed.end())
      continue;
    if (k == "quantization_config")
      HYENA_FAIL(f.source, ": field 'quantization_config' is not supported (quantized weights; load the ",
                 "unquantized checkpoint)");
    if (k == "auto_map")
      HYENA_FAIL(f.source, ": field 'auto_map' is not supported (the model runs its own code, which ", arch,
                 " here may not compute)");
    HYENA_FAIL(f.source, ": field '", k, "' (", it.value().dump(), ") is not known to hyena's ", arch,
               " loader and may change the computation; refusing rather than ignoring it");
  }
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
    audit_fields(f, type,
                 {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "max_position_embeddings", "hidden_act", "rope_scaling", "rope_parameters", "rotary_pct",
                  "partial_rotary_factor", "rotary_emb_base", "rope_theta", "layer_norm_eps", "use_parallel_residual",
                  "tie_word_embeddings", "attention_bias"});
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
    if (f.has("pretraining_tp"))
      HYENA_CHECK(f.integer("pretraining_tp") >= 1, source, ": pretraining_tp ", f.integer("pretraining_tp"),
                  " must be at least 1");
    audit_fields(f, type,
                 {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "max_position_embeddings", "num_key_value_heads", "head_dim", "hidden_act", "rope_scaling",
                  "rope_parameters", "rotary_pct", "partial_rotary_factor", "rotary_emb_base", "rope_theta",
                  "rms_norm_eps", "tie_word_embeddings", "attention_bias", "mlp_bias"});
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
