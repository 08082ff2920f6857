// models/config_json.hpp: model configs <-> JSON (checkpoint metadata, CLI presets).
//
//   {"vocab": 512, "hidden": 64, ..., "mixer": {"order": 2, "filter_order": 64, ...}}
//
// The shape's fields come from model_config::visit_fields and the mixer's from its hparams'
// visit_fields, so a new mixer's hyperparameters are saved and read back with no code here.
#pragma once
#include <nlohmann/json.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "config.hpp"

namespace hyena::models {

namespace config_json_detail {

template <class S>
nlohmann::json fields_to_json(const S& s) {
  nlohmann::json j = nlohmann::json::object();
  S::visit_fields(s, [&](const char* name, const auto& v) { j[name] = v; });
  return j;
}

// Reads j's fields into s; returns the names it did not know.
template <class S>
void fields_from_json(const nlohmann::json& j, S& s, const std::string& what, bool allow_unknown = false) {
  HYENA_CHECK(j.is_object(), what, ": expected a JSON object");
  for (auto item : j.items()) {
    // Named references rather than a structured binding: clang before 16 cannot capture bindings.
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    bool known = false;
    S::visit_fields(s, [&](const char* name, auto& field) {
      if (key != name) return;
      known = true;
      using F = std::decay_t<decltype(field)>;
      if constexpr (std::is_same_v<F, bool>) {
        HYENA_CHECK(value.is_boolean(), what, ": field '", key, "' must be true or false, got ", value.dump());
      } else if constexpr (std::is_integral_v<F>) {
        // Only an integer that fits: converting a float such as 1e30 to an integer is undefined
        // behaviour (found by fuzz_checkpoint's UBSan).
        const bool fits = value.is_number_unsigned()
                              ? value.template get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<F>::max())
                              : value.is_number_integer() &&
                                    value.template get<std::int64_t>() >= std::int64_t(std::numeric_limits<F>::min()) &&
                                    value.template get<std::int64_t>() <= std::int64_t(std::numeric_limits<F>::max());
        HYENA_CHECK(fits, what, ": field '", key, "' must be an integer in range, got ", value.dump());
      } else {
        HYENA_CHECK(value.is_number(), what, ": field '", key, "' must be a number, got ", value.dump());
      }
      field = value.template get<F>();
    });
    HYENA_CHECK(known || allow_unknown, what, ": unknown field '", key, "'");
  }
}

}  // namespace config_json_detail

inline nlohmann::json to_json(const model_config& c) { return config_json_detail::fields_to_json(c); }

template <class H>
nlohmann::json to_json(const lm_config<H>& c) {
  nlohmann::json j = to_json(static_cast<const model_config&>(c));
  nlohmann::json m = config_json_detail::fields_to_json(c.mixer);
  if (!m.empty()) j["mixer"] = m;
  return j;
}

// A config from JSON: every field present overrides the default; unknown fields are an
// error (a typo in a config file should not silently do nothing). Files written before the
// mixer had its own section spelled its fields "hyena_<name>" at the top level; those are
// read into the mixer's fields of the same name.
template <class Config = lm_config<nn::no_hparams>>
Config config_from_json(const nlohmann::json& j) {
  HYENA_CHECK(j.is_object(), "model config: expected a JSON object");
  Config c;
  nlohmann::json shape = nlohmann::json::object(), mixer = nlohmann::json::object();
  for (auto& [key, value] : j.items()) {
    if (key == "mixer") {
      HYENA_CHECK(value.is_object(), "model config: 'mixer' must be an object");
      mixer.update(value);
    } else if (key.rfind("hyena_", 0) == 0) {
      mixer[key.substr(6)] = value;
    } else {
      shape[key] = value;
    }
  }
  config_json_detail::fields_from_json(shape, static_cast<model_config&>(c), "model config");
  // A model whose mixer has other hyperparameters (a teacher read from a student's file)
  // ignores the mixer section rather than failing.
  const bool has_mixer_fields = !config_json_detail::fields_to_json(c.mixer).empty();
  config_json_detail::fields_from_json(mixer, c.mixer, "model config, mixer", !has_mixer_fields);
  c.validate();
  return c;
}

// The shared shape alone.
inline model_config model_config_from_json(const nlohmann::json& j) { return config_from_json(j); }

}  // namespace hyena::models
