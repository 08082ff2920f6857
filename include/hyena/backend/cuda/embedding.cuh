// cuda/embedding.cuh: token embedding lookup and its gradient, mirroring
// cpu_ref/embedding.hpp. Forward validates the ids on the device and reads back the first
// bad position (one small sync), so a bad id throws hyena::error like the oracle.
#pragma once
#include <climits>
#include <cstdint>

#include "common.cuh"

namespace hyena::backend {

namespace cuda_detail {

// slot[0] = lowest position with an id outside [0, vocab), LLONG_MAX when none.
template <int = 0>  // a template, so the header can be included by several TUs
__global__ void first_bad_id_kernel(index_t n, index_t vocab, const std::int32_t* ids, long long* slot) {
  HYENA_GRID_LOOP(t, n) {
    std::int32_t id = ids[t];
    if (id < 0 || id >= vocab) atomicMin(slot, (long long)t);
  }
}
template <int = 0>  // a template, so the header can be included by several TUs
__global__ void set_ll_kernel(long long* slot, long long v) {
  *slot = v;
}

template <class T>
__global__ void embedding_gather_kernel(index_t n_tokens, index_t dim, const std::int32_t* ids, const T* table, T* y) {
  HYENA_GRID_LOOP(i, n_tokens * dim) {
    index_t t = i / dim, c = i % dim;
    y[i] = table[index_t(ids[t]) * dim + c];
  }
}
// Repeated ids collide, hence atomicAdd (order, and so the last bits, may vary run to run).
template <class T>
__global__ void embedding_scatter_kernel(index_t n_tokens, index_t dim, const std::int32_t* ids, const T* dy,
                                         T* dtable) {
  HYENA_GRID_LOOP(i, n_tokens * dim) {
    index_t t = i / dim, c = i % dim;
    atomicAdd(dtable + index_t(ids[t]) * dim + c, dy[i]);
  }
}

// Throws naming the first position whose id is outside [0, limit); `what` names the op.
inline void check_ids(cuda_context& ctx, index_t n, index_t limit, const std::int32_t* ids, const char* what) {
  if (n <= 0) return;
  long long* slot = static_cast<long long*>(ctx.workspace(sizeof(long long)));
  set_ll_kernel<<<1, 1, 0, ctx.stream()>>>(slot, LLONG_MAX);
  HYENA_CUDA_CHECK_LAUNCH("set_ll_kernel");
  first_bad_id_kernel<<<grid_for(ctx, n), block_threads, 0, ctx.stream()>>>(n, limit, ids, slot);
  HYENA_CUDA_CHECK_LAUNCH("first_bad_id_kernel");
  long long* host = static_cast<long long*>(ctx.host_scratch(sizeof(long long)));
  HYENA_CUDA_CHECK(cudaMemcpyAsync(host, slot, sizeof(long long), cudaMemcpyDeviceToHost, ctx.stream()));
  ctx.synchronize();
  long long bad = *host;
  if (bad == LLONG_MAX) return;
  std::int32_t id = 0;
  HYENA_CUDA_CHECK(cudaMemcpy(&id, ids + bad, sizeof(id), cudaMemcpyDeviceToHost));
  HYENA_FAIL(what, ": token id ", id, " at position ", bad, " is out of range [0, ", limit, ")");
}

}  // namespace cuda_detail

struct cuda_embedding_ops {
  // y[t, :] = table[ids[t], :]; throws hyena::error on an id outside [0, vocab).
  template <class T>
  static void embedding_forward(cuda_context& ctx, index_t n_tokens, index_t dim, index_t vocab,
                                const std::int32_t* ids, const T* table, T* y) {
    if (n_tokens <= 0) return;
    cuda_detail::check_ids(ctx, n_tokens, vocab, ids, "embedding");
    if (dim <= 0) return;
    cuda_detail::embedding_gather_kernel<<<cuda_detail::grid_for(ctx, n_tokens * dim), cuda_detail::block_threads, 0,
                                           ctx.stream()>>>(n_tokens, dim, ids, table, y);
    HYENA_CUDA_CHECK_LAUNCH("embedding_gather_kernel");
  }

  // dtable[ids[t], :] += dy[t, :] (ids were checked by forward).
  template <class T>
  static void embedding_backward(cuda_context& ctx, index_t n_tokens, index_t dim, const std::int32_t* ids, const T* dy,
                                 T* dtable) {
    if (n_tokens <= 0 || dim <= 0) return;
    cuda_detail::embedding_scatter_kernel<<<cuda_detail::grid_for(ctx, n_tokens * dim), cuda_detail::block_threads, 0,
                                            ctx.stream()>>>(n_tokens, dim, ids, dy, dtable);
    HYENA_CUDA_CHECK_LAUNCH("embedding_scatter_kernel");
  }
};

}  // namespace hyena::backend
