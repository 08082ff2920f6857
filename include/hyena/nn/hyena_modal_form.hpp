// nn/hyena_modal_form.hpp: a Hyena model's long filters as diagonal recurrences (the data; the
// fit is nn/hyena_modal.hpp).
//
// Laughing Hyena (Massaroli et al., NeurIPS 2023): each channel's filter h[0..L) is replaced by
//   h[t] ~ Re sum_{k < modes} R_k lambda_k^t,   |lambda_k| < 1,
// so that (h * w)[t] = Re sum_k R_k s_k[t] with s_k[t] = lambda_k s_k[t-1] + w[t]: a decoder then
// spends O(modes) per channel and token whatever the position (models/decoder.hpp).
#pragma once
#include <vector>

#include "../tensor/tensor.hpp"

namespace hyena::nn {

template <class T>
struct hyena_modal_form {
  index_t modes = 0;
  // Per layer, (convs * hidden, modes, 2) with convs = hyena_config::convs() (order - 1, or the
  // rank): lambda and R as (re, im), channel-major in the order of the operator's filters
  // (filter i's channels at rows i * hidden ..).
  std::vector<tensor<T>> poles, residues;
  std::vector<double> filter_error;  // per layer: ||h - h_modal||^2 / ||h||^2 over the fitted length
};

}  // namespace hyena::nn
