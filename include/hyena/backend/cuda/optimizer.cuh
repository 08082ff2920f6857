// cuda/optimizer.cuh: the fused AdamW update (backend/optimizer.hpp) in one launch.
//
// The segment list (host memory, pointers into device memory) is copied to the workspace and
// each block updates one segment with a block-stride loop; the optimizer cuts tensors into
// segments of at most 2^14 elements, so the blocks carry even work. The element arithmetic is
// adamw_update, the same function the host backends run.
#pragma once
#include "common.cuh"
#include "../optimizer.hpp"

namespace hyena::backend {

namespace cuda_detail {

template <class T>
__global__ void adamw_step_kernel(const adamw_segment<T>* segments, adamw_hyper h) {
  const adamw_segment<T> sg = segments[blockIdx.x];
  for (index_t i = threadIdx.x; i < sg.n; i += blockDim.x)
    adamw_update(h, sg.lr, sg.decay, sg.param[i], sg.grad[i], sg.m[i], sg.v[i]);
}

}  // namespace cuda_detail

struct cuda_optimizer_ops {
  template <class T>
  static void adamw_step(cuda_context& ctx, const adamw_segment<T>* segments, index_t count, const adamw_hyper& h) {
    if (count <= 0) return;
    HYENA_CHECK(count < (index_t(1) << 31), "adamw_step: ", count, " segments exceed one launch's grid");
    const std::size_t bytes = sizeof(adamw_segment<T>) * std::size_t(count);
    auto* table = static_cast<adamw_segment<T>*>(ctx.workspace(bytes));
    HYENA_CUDA_CHECK(cudaMemcpyAsync(table, segments, bytes, cudaMemcpyHostToDevice, ctx.stream()));
    cuda_detail::adamw_step_kernel<<<unsigned(count), cuda_detail::block_threads, 0, ctx.stream()>>>(table, h);
    HYENA_CUDA_CHECK_LAUNCH("adamw_step_kernel");
  }
};

}  // namespace hyena::backend
