// nn/mixer.hpp: a token mixer's own hyperparameters.
//
// A mixer is a layer (nn/layer.hpp) that maps (batch, seq, hidden) to the same shape. Its
// sizes come from the model (`model_config`); what only it has (a Hyena operator's order and
// filter width, say) it declares as a nested `hparams` struct:
//
//   struct hparams {
//     index_t order = 2;  ...                            defaults a user gets
//     template <class Self, class Fn>                    every field by name, so models/ can
//     static void visit_fields(Self& h, Fn&& fn);        write it to a checkpoint and read it back
//     void validate() const;                             throws hyena::error on a bad value
//   };
//   static config config::from(const model_config&, const hparams&);
//
// A mixer without hyperparameters declares nothing and keeps `config::from(model_config)`.
// A model built from a mixer carries one `hparams` value (models::lm_config), saved in its
// checkpoints under "mixer".
#pragma once
#include <type_traits>

#include "../model_config.hpp"

namespace hyena::nn {

// The hyperparameters of a mixer that has none.
struct no_hparams {
  template <class Self, class Fn>
  static void visit_fields(Self&, Fn&&) {}
  void validate() const {}
};

template <class Layer>
struct hparams_of {
  using type = no_hparams;
};
template <class Layer>
  requires requires { typename Layer::hparams; }
struct hparams_of<Layer> {
  using type = typename Layer::hparams;
};
// Layer::hparams, or no_hparams when the layer declares none.
template <class Layer>
using hparams_t = typename hparams_of<Layer>::type;

// The layer's config for a model: config::from(model, hparams) when the layer takes its own
// hyperparameters, config::from(model) otherwise.
template <class Layer, class H>
typename Layer::config layer_config(const model_config& m, const H& h) {
  using C = typename Layer::config;
  if constexpr (requires { C::from(m, h); }) return C::from(m, h);
  else return C::from(m);
}

}  // namespace hyena::nn
