// train/grad_clip.hpp: clipping gradients by their global L2 norm (torch.nn.utils.clip_grad_norm_).
#pragma once
#include <cmath>
#include <vector>

#include "param_entry.hpp"

namespace hyena::train {

// sqrt(sum of g^2) over every view, accumulated in double (per-thread partial sums).
template <class T>
double global_grad_norm(const std::vector<view<T>>& grads) {
  double total = 0;
  for (const auto& g : grads) {
    HYENA_CHECK(g.contiguous(), "global_grad_norm: gradient views must be contiguous");
    const T* d = g.data;
    const index_t n = g.numel();
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n >= (index_t(1) << 16))
    for (index_t i = 0; i < n; ++i) s += double(d[i]) * double(d[i]);
    total += s;
  }
  return std::sqrt(total);
}

// Scales every gradient by max_norm / (norm + 1e-6) when the global norm exceeds max_norm
// (PyTorch's rule) and returns the norm before clipping. A non-finite norm is returned
// with the gradients left alone, so the caller can skip the step. max_norm <= 0 only measures.
template <class T>
double clip_grad_norm(const std::vector<view<T>>& grads, double max_norm) {
  const double norm = global_grad_norm(grads);
  if (max_norm <= 0 || !std::isfinite(norm) || norm <= max_norm) return norm;
  const T scale = static_cast<T>(max_norm / (norm + 1e-6));
  for (const auto& g : grads) {
    T* d = g.data;
    const index_t n = g.numel();
#pragma omp parallel for schedule(static) if (n >= (index_t(1) << 16))
    for (index_t i = 0; i < n; ++i) d[i] *= scale;
  }
  return norm;
}

// The same over an optimizer's entry list (frozen tensors included: pass only trained ones).
template <class T>
double clip_grad_norm(const std::vector<param_entry<T>>& entries, double max_norm) {
  std::vector<view<T>> grads;
  grads.reserve(entries.size());
  for (const auto& e : entries) grads.push_back(e.grad);
  return clip_grad_norm(grads, max_norm);
}

}  // namespace hyena::train
