// optimizer.hpp: what a backend's fused AdamW update (`adamw_step`) receives.
//
// The optimizer (train/adamw.hpp) owns the hyperparameters, the groups and the step count, all on
// the host; the backend owns the element loop. One call updates every trained tensor of a model:
// the caller lists each tensor's owned range as a segment (pointers into the backend's memory:
// parameters, gradients and the moments m, v) with its group's learning rate and decay folded in.
//
// Per element i of a segment, in double (PyTorch's torch.optim.AdamW, Loshchilov & Hutter 2019):
//   g  = T(grad[i] * T(grad_scale))            the clip factor, applied in T as a separate pass would
//   m  = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
//   p  = p decay - (lr / bias_correction1) m / (sqrt(v) / bias_correction2_sqrt + eps)
// with decay = 1 - lr weight_decay, bias_correction1 = 1 - beta1^t, bias_correction2_sqrt =
// sqrt(1 - beta2^t). The gradients are read, never written.
#pragma once
#include <cmath>

#include "../tensor/view.hpp"

#ifdef __CUDACC__
#define HYENA_HOST_DEVICE __host__ __device__
#else
#define HYENA_HOST_DEVICE
#endif

namespace hyena::backend {

template <class T>
struct adamw_segment {
  T* param = nullptr;
  const T* grad = nullptr;
  T* m = nullptr;  // the moments of elements [0, n) of this segment
  T* v = nullptr;
  index_t n = 0;
  double lr = 0;     // the group's learning rate (lr * lr_scale)
  double decay = 1;  // 1 - lr * weight_decay
};

struct adamw_hyper {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double bias_correction1 = 1, bias_correction2_sqrt = 1;
  double grad_scale = 1;  // the gradient-norm clip factor (1: no clipping)
};

// a * b + c, rounded once where the machine has an FMA instruction (and computed so by the cpu
// backend's vector loop too); without one, rounded twice on both (nothing to contract, and a
// software ::fma would make the optimizer step many times slower).
HYENA_HOST_DEVICE inline double adamw_fma(double a, double b, double c) {
#if defined(__CUDA_ARCH__) || defined(__FMA__) || defined(__AVX512F__) || defined(__aarch64__)
  return ::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// The update of one element (shared by every host backend, and the CUDA kernel's reference).
// Its sums are explicit: left as a * b + c, a compiler may contract them into an FMA one way in
// a scalar loop and another way in a vector one, and the cpu backend's vector loop
// (cpu/optimizer.hpp) would then differ from this in the last bit of m (test_backend_contract
// failed so).
template <class T>
HYENA_HOST_DEVICE inline void adamw_update(const adamw_hyper& h, double lr, double decay, T& p, T g, T& m, T& v) {
  const double gi = double(T(g * T(h.grad_scale)));
  const double mi = adamw_fma(h.beta1, double(m), (1 - h.beta1) * gi);
  const double vi = adamw_fma(h.beta2, double(v), (1 - h.beta2) * gi * gi);
  m = T(mi);
  v = T(vi);
  p = T(adamw_fma(double(p), decay, -((lr / h.bias_correction1) * mi / (::sqrt(vi) / h.bias_correction2_sqrt + h.eps))));
}

}  // namespace hyena::backend
