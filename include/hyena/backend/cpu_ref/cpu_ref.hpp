// cpu_ref.hpp: the reference backend. Plain scalar loops, written to be obviously
// right; every faster backend is tested against it.
#pragma once
#include "../../tensor/memory.hpp"
#include "../backend.hpp"  // the contract (concept.hpp) and view_of
#include "../context.hpp"
#include "alignment.hpp"
#include "attention.hpp"
#include "conv.hpp"
#include "decode.hpp"
#include "elementwise.hpp"
#include "embedding.hpp"
#include "filter.hpp"
#include "gemm.hpp"
#include "loss.hpp"
#include "norm.hpp"
#include "optimizer.hpp"

namespace hyena::backend {

struct cpu_ref : ref_gemm_ops,
                 ref_elementwise_ops,
                 ref_norm_ops,
                 ref_embedding_ops,
                 ref_attention_ops,
                 ref_conv_ops,
                 ref_filter_ops,
                 ref_loss_ops,
                 ref_alignment_ops,
                 ref_decode_ops,
                 ref_optimizer_ops {
  using context = host_context;
  using memory = host_memory;
  static constexpr const char* name = "cpu_ref";
};

static_assert(Backend<cpu_ref>);

}  // namespace hyena::backend
