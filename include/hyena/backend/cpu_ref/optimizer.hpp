// cpu_ref/optimizer.hpp: the fused AdamW update (backend/optimizer.hpp), one element at a time.
#pragma once
#include "../context.hpp"
#include "../optimizer.hpp"

namespace hyena::backend {

struct ref_optimizer_ops {
  // Updates every segment's parameters and moments in place (see backend/optimizer.hpp).
  template <class T>
  static void adamw_step(host_context&, const adamw_segment<T>* segments, index_t count, const adamw_hyper& h) {
    for (index_t s = 0; s < count; ++s) {
      const adamw_segment<T>& sg = segments[s];
      for (index_t i = 0; i < sg.n; ++i) adamw_update(h, sg.lr, sg.decay, sg.param[i], sg.grad[i], sg.m[i], sg.v[i]);
    }
  }
};

}  // namespace hyena::backend
