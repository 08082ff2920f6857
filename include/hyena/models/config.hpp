// models/config.hpp: a model's whole configuration: the shared shape (model_config) and the
// hyperparameters of its mixer (nn/mixer.hpp).
//
//   models::lm_config<nn::hyena_hparams> c(teacher.config(), {.order = 3});
//
// lm_config derives from model_config, so every layer and helper that reads the shape takes
// it as it is; a model_config converts to an lm_config with the mixer's defaults.
#pragma once
#include "../model_config.hpp"
#include "../nn/mixer.hpp"

namespace hyena::models {

using hyena::model_config;

template <class MixerHparams>
struct lm_config : model_config {
  using mixer_hparams = MixerHparams;
  MixerHparams mixer{};

  lm_config() = default;
  lm_config(const model_config& m, const MixerHparams& h = {}) : model_config(m), mixer(h) {}  // NOLINT: implicit

  void validate() const {
    model_config::validate();
    mixer.validate();
  }
};

}  // namespace hyena::models
