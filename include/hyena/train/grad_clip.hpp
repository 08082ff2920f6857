// train/grad_clip.hpp: clipping gradients by their global L2 norm (torch.nn.utils.clip_grad_norm_).
//
// The trainer measures the norm (global_grad_norm) and folds the factor (clip_factor) into the
// optimizer's update (adamw::step's grad_scale), so the gradients are read once, not rewritten;
// clip_grad_norm rewrites them, for callers that want the clipped gradients themselves. Both go
// through backend ops (sum_squares, scale).
#pragma once
#include <cmath>
#include <vector>

#include "../backend/backend.hpp"
#include "../backend/cpu/cpu.hpp"
#include "param_entry.hpp"

namespace hyena::train {

// sqrt(sum of g^2) over every view, accumulated in double by the backend.
template <class T, class B = backend::cpu>
double global_grad_norm(typename B::context& ctx, const std::vector<view_of<B, T>>& grads) {
  double total = 0;
  for (const auto& g : grads) {
    HYENA_CHECK(g.contiguous(), "global_grad_norm: gradient views must be contiguous");
    total += B::sum_squares(ctx, g.numel(), g.data);
  }
  return std::sqrt(total);
}

// PyTorch's rule: max_norm / (norm + 1e-6) when the norm exceeds max_norm, else 1 (also for a
// non-finite norm, which the caller must handle, and for max_norm <= 0: clipping off).
inline double clip_factor(double norm, double max_norm) {
  if (max_norm <= 0 || !std::isfinite(norm) || norm <= max_norm) return 1.0;
  return max_norm / (norm + 1e-6);
}

// Scales every gradient by clip_factor(norm, max_norm) and returns the norm before clipping. A
// non-finite norm is returned with the gradients left alone, so the caller can skip the step.
// max_norm <= 0 only measures.
template <class T, class B = backend::cpu>
double clip_grad_norm(typename B::context& ctx, const std::vector<view_of<B, T>>& grads, double max_norm) {
  const double norm = global_grad_norm<T, B>(ctx, grads);
  const double factor = clip_factor(norm, max_norm);
  if (factor != 1.0)
    for (const auto& g : grads) B::scale(ctx, g.numel(), static_cast<T>(factor), g.data);
  return norm;
}

// The same on a default host context.
template <class T>
double global_grad_norm(const std::vector<view<T>>& grads) {
  backend::host_context ctx;
  return global_grad_norm<T>(ctx, grads);
}
template <class T>
double clip_grad_norm(const std::vector<view<T>>& grads, double max_norm) {
  backend::host_context ctx;
  return clip_grad_norm<T>(ctx, grads, max_norm);
}

// The gradients of an optimizer's entry list (frozen tensors included: pass only trained ones).
template <class T, class Memory>
std::vector<view<T, Memory>> gradients_of(const std::vector<param_entry<T, Memory>>& entries) {
  std::vector<view<T, Memory>> grads;
  grads.reserve(entries.size());
  for (const auto& e : entries) grads.push_back(e.grad);
  return grads;
}
template <class T>
double clip_grad_norm(const std::vector<param_entry<T>>& entries, double max_norm) {
  return clip_grad_norm(gradients_of(entries), max_norm);
}

}  // namespace hyena::train
