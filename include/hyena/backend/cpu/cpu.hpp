// cpu.hpp: the fast host backend. Each op group refines cpu_ref's: an op a group
// defines hides the reference one, an op it leaves out falls back to cpu_ref's
// (the way xsimd's avx2 falls back to avx).
#pragma once
#include "../cpu_ref/cpu_ref.hpp"
#include "alignment.hpp"
#include "attention.hpp"
#include "conv.hpp"
#include "decode.hpp"
#include "elementwise.hpp"
#include "embedding.hpp"
#include "filter.hpp"
#include "fused_attention.hpp"
#include "gemm.hpp"
#include "loss.hpp"
#include "norm.hpp"
#include "optimizer.hpp"

namespace hyena::backend {

struct cpu : cpu_gemm_ops<
                 cpu_elementwise_ops<
                     cpu_norm_ops<
                         cpu_embedding_ops<
                             cpu_fused_attention_ops<cpu_attention_ops<
                                 cpu_conv_ops<
                                     cpu_filter_ops<
                                         cpu_loss_ops<
                                             cpu_alignment_ops<
                                                 cpu_decode_ops<cpu_optimizer_ops<cpu_ref>>>>>>>>>>>> {
  using context = host_context;
  using memory = host_memory;
  static constexpr const char* name = "cpu";
};

static_assert(Backend<cpu>);

}  // namespace hyena::backend
