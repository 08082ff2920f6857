// models/config_json.hpp: model_config <-> JSON (checkpoint metadata, CLI presets).
#pragma once
#include <limits>
#include <type_traits>
#include <nlohmann/json.hpp>
#include <string>

#include "config.hpp"

namespace hyena::models {

inline nlohmann::json to_json(const model_config& c) {
  return {{"vocab", c.vocab},
          {"hidden", c.hidden},
          {"layers", c.layers},
          {"heads", c.heads},
          {"kv_heads", c.kv_heads},
          {"intermediate", c.intermediate},
          {"max_seq", c.max_seq},
          {"rotary_pct", c.rotary_pct},
          {"rotary_base", c.rotary_base},
          {"norm_eps", c.norm_eps},
          {"parallel_residual", c.parallel_residual},
          {"tie_embeddings", c.tie_embeddings},
          {"attention_bias", c.attention_bias},
          {"mlp_bias", c.mlp_bias},
          {"hyena_order", c.hyena_order},
          {"hyena_filter_order", c.hyena_filter_order},
          {"hyena_emb_dim", c.hyena_emb_dim},
          {"hyena_filter_layers", c.hyena_filter_layers},
          {"hyena_short_filter", c.hyena_short_filter},
          {"hyena_sin_freq", c.hyena_sin_freq}};
}

// Reads every field present in `j` over the defaults; unknown fields are an error (a typo
// in a config file should not silently do nothing).
inline model_config model_config_from_json(const nlohmann::json& j) {
  HYENA_CHECK(j.is_object(), "model config: expected a JSON object");
  model_config c;
  nlohmann::json known = to_json(c);
  for (auto& [key, value] : j.items()) {
    HYENA_CHECK(known.contains(key), "model config: unknown field '", key, "'");
    HYENA_CHECK(value.is_number() || value.is_boolean(), "model config: field '", key, "' must be a number or boolean");
  }
  // Each field by its type: an integer field takes only an integer that fits (a float such as
  // 1e30 converted to an integer is undefined behaviour: found by fuzz_checkpoint's UBSan).
  auto get = [&](const char* k, auto& field) {
    using F = std::decay_t<decltype(field)>;
    if (!j.contains(k)) return;
    const auto& v = j.at(k);
    if constexpr (std::is_same_v<F, bool>) {
      HYENA_CHECK(v.is_boolean(), "model config: field '", k, "' must be true or false, got ", v.dump());
    } else if constexpr (std::is_integral_v<F>) {
      HYENA_CHECK(v.is_number_integer() && (v.is_number_unsigned() ? v.get<std::uint64_t>() <= std::uint64_t(
                                                                         std::numeric_limits<F>::max())
                                                                   : v.get<std::int64_t>() >= std::int64_t(
                                                                         std::numeric_limits<F>::min()) &&
                                                                         v.get<std::int64_t>() <= std::int64_t(
                                                                             std::numeric_limits<F>::max())),
                  "model config: field '", k, "' must be an integer in range, got ", v.dump());
    } else {
      HYENA_CHECK(v.is_number(), "model config: field '", k, "' must be a number, got ", v.dump());
    }
    field = v.get<F>();
  };
  get("vocab", c.vocab);
  get("hidden", c.hidden);
  get("layers", c.layers);
  get("heads", c.heads);
  get("kv_heads", c.kv_heads);
  get("intermediate", c.intermediate);
  get("max_seq", c.max_seq);
  get("rotary_pct", c.rotary_pct);
  get("rotary_base", c.rotary_base);
  get("norm_eps", c.norm_eps);
  get("parallel_residual", c.parallel_residual);
  get("tie_embeddings", c.tie_embeddings);
  get("attention_bias", c.attention_bias);
  get("mlp_bias", c.mlp_bias);
  get("hyena_order", c.hyena_order);
  get("hyena_filter_order", c.hyena_filter_order);
  get("hyena_emb_dim", c.hyena_emb_dim);
  get("hyena_filter_layers", c.hyena_filter_layers);
  get("hyena_short_filter", c.hyena_short_filter);
  get("hyena_sin_freq", c.hyena_sin_freq);
  c.validate();
  return c;
}

}  // namespace hyena::models
