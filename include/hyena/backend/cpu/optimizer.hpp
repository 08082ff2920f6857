// cpu/optimizer.hpp: the fused AdamW update over the threads.
//
// The segments are dealt to the threads dynamically, so many small tensors (biases, norms,
// filters) spread as well as large ones; callers cut long tensors into segments (adamw cuts at
// 2^14 elements), and a segment is one thread's work. Nothing is allocated. Each element's
// arithmetic is cpu_ref's (backend/optimizer.hpp), so the two agree bit for bit.
#pragma once
#include "../context.hpp"
#include "../optimizer.hpp"

namespace hyena::backend {

template <class Base>
struct cpu_optimizer_ops : Base {
  template <class T>
  static void adamw_step(host_context& ctx, const adamw_segment<T>* segments, index_t count, const adamw_hyper& h) {
    index_t total = 0;
    for (index_t s = 0; s < count; ++s) total += segments[s].n;
    const int threads = total >= (index_t(1) << 16) ? ctx.threads() : 1;
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
    for (index_t s = 0; s < count; ++s) {
      const adamw_segment<T>& sg = segments[s];
      for (index_t i = 0; i < sg.n; ++i) adamw_update(h, sg.lr, sg.decay, sg.param[i], sg.grad[i], sg.m[i], sg.v[i]);
    }
  }
};

}  // namespace hyena::backend
