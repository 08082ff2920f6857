// models/modal.hpp: the modal form of a whole Hyena model (every layer's filters as diagonal
// recurrences, nn/hyena_modal.hpp), for constant-cost decoding (models/decoder.hpp).
#pragma once
#include "../nn/hyena_modal.hpp"
#include "causal_lm.hpp"

namespace hyena::models {

struct modal_options {
  index_t modes = 16;   // states per channel (d)
  index_t length = 0;   // filter length fitted (0: the model's max_seq)
  index_t fit_len = 0;  // samples the residues fit (0: all of length)
};

// Fits every layer's filters; filter_error holds each layer's ||h - h_modal||^2 / ||h||^2.
template <class Model>
nn::hyena_modal_form<typename Model::scalar> fit_modal_form(const Model& m, typename Model::context& ctx,
                                                            const modal_options& o) {
  using block = typename Model::block_type;
  using B = typename Model::backend;
  using T = typename Model::scalar;
  static_assert(std::is_same_v<typename block::mixer, nn::hyena_operator<B, T>>,
                "fit_modal_form: the model's mixer must be nn::hyena_operator");
  const auto& c = m.config();
  HYENA_CHECK(o.modes >= 1, "fit_modal_form: modes must be >= 1, got ", o.modes);
  const index_t len = o.length > 0 ? o.length : c.max_seq;
  nn::hyena_modal_form<T> form;
  form.modes = o.modes;
  for (index_t l = 0; l < c.layers; ++l) {
    form.poles.emplace_back();
    form.residues.emplace_back();
    form.filter_error.push_back(nn::fit_hyena_modal<B, T>(ctx, block::mixer_config(c),
                                                          m.parameters().blocks[std::size_t(l)].mix, o.modes, len,
                                                          o.fit_len, form.poles.back(), form.residues.back()));
  }
  return form;
}

}  // namespace hyena::models
