// train/param_entry.hpp: a model's trainable tensors as a flat list of (name, param, grad).
//
// Optimizers and gradient clipping work on this list rather than on model types, so
// they serve any params struct whose `visit` describes its tensors.
#pragma once
#include <string>
#include <vector>

#include "../tensor/arena.hpp"

namespace hyena::train {

template <class T, class Memory = host_memory>
struct param_entry {
  std::string name;  // dotted, as `visit` names it ("blocks.0.mixer.in_proj.weight")
  view<T, Memory> param;
  view<T, Memory> grad;
};

// Pairs the tensors of `params` and `grads` (the same struct type, bound to two arenas)
// by walking both with the same arguments.
// Memory: where the tensors live (the model backend's memory; host by default).
template <class T, class Memory = host_memory, class S, class... Args>
std::vector<param_entry<T, Memory>> param_entries(S& params, S& grads, const Args&... args) {
  std::vector<param_entry<T, Memory>> out;
  for_each_tensor<T, Memory>(
      params, [&](const std::string& n, view<T, Memory>& v, const shape&) { out.push_back({n, v, {}}); }, args...);
  std::size_t i = 0;
  for_each_tensor<T, Memory>(grads, [&](const std::string& n, view<T, Memory>& v, const shape&) {
    HYENA_CHECK(i < out.size() && out[i].name == n, "param_entries: grads layout differs from params at ", n);
    out[i++].grad = v;
  }, args...);
  HYENA_CHECK(i == out.size(), "param_entries: grads have ", i, " tensors, params ", out.size());
  return out;
}

}  // namespace hyena::train
