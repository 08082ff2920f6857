// models/llama.hpp: the Llama teacher: RMSNorm, grouped-query attention with full
// rotary and no biases, SwiGLU MLP, sequential pre-norm residual.
#pragma once
#include "../nn/attention.hpp"
#include "../nn/rms_norm.hpp"
#include "../nn/swiglu_mlp.hpp"
#include "causal_lm.hpp"

namespace hyena::models {

template <class B, class T = float>
using llama_block = block<B, T, nn::attention, nn::swiglu_mlp, nn::rms_norm>;

template <class B, class T = float>
using llama = causal_lm<llama_block<B, T>>;

inline model_config llama_config(index_t vocab, index_t hidden, index_t layers, index_t heads, index_t kv_heads,
                                 index_t intermediate, index_t max_seq) {
  auto c = model_config::sized(vocab, hidden, layers, heads, kv_heads, intermediate, max_seq);
  c.rotary_pct = 1.0;
  c.rotary_base = 10000;
  c.norm_eps = 1e-5;
  c.parallel_residual = false;
  c.tie_embeddings = false;
  c.attention_bias = false;
  c.mlp_bias = false;
  return c;
}

}  // namespace hyena::models
