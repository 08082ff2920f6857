// cuda/cuda.hpp: the CUDA backend. Include only from nvcc-compiled code (.cu): the op groups
// hold kernels. Ops take device pointers and run in order on the context's stream; ops that
// return a value to the host (sums, losses, id checks) wait for the stream.
//
// Unlike cpu (which refines cpu_ref), every group here is complete on its own: a host
// fallback could not read device memory, so a missing op must be a compile error.
#pragma once
#ifndef __CUDACC__
#error "hyena/backend/cuda/cuda.hpp holds CUDA kernels: include it from a .cu file compiled by nvcc"
#endif

#include "../backend.hpp"
#include "../cpu_ref/cpu_ref.hpp"  // the size checks and messages cuda shares with it
#include "alignment.cuh"
#include "attention.cuh"
#include "check.hpp"
#include "context.hpp"
#include "conv.cuh"
#include "decode.cuh"
#include "elementwise.cuh"
#include "embedding.cuh"
#include "filter.cuh"
#include "fused_attention.cuh"
#include "gemm.cuh"
#include "loss.cuh"
#include "memory.hpp"
#include "norm.cuh"
#include "optimizer.cuh"

namespace hyena::backend {

struct cuda : cuda_gemm_ops,
              cuda_elementwise_ops,
              cuda_norm_ops,
              cuda_embedding_ops,
              cuda_attention_ops,
              cuda_fused_attention_ops,
              cuda_conv_ops,
              cuda_filter_ops,
              cuda_loss_ops,
              cuda_alignment_ops,
              cuda_decode_ops,
              cuda_optimizer_ops {
  using context = cuda_context;
  using memory = device_memory;
  static constexpr const char* name = "cuda";
};

static_assert(Backend<cuda>);

}  // namespace hyena::backend
