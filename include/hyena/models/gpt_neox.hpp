// models/gpt_neox.hpp: the GPT-NeoX (Pythia) teacher: LayerNorm, attention with partial
// rotary, exact-GELU MLP, parallel residual, untied unembedding.
#pragma once
#include "../nn/attention.hpp"
#include "../nn/gelu_mlp.hpp"
#include "../nn/layer_norm.hpp"
#include "causal_lm.hpp"

namespace hyena::models {

template <class B, class T = float>
using gpt_neox_block = block<B, T, nn::attention, nn::gelu_mlp, nn::layer_norm>;

template <class B, class T = float>
using gpt_neox = causal_lm<gpt_neox_block<B, T>>;

// A GPT-NeoX configuration (Pythia's defaults: rotary on 25% of each head, base 10000,
// parallel residual, biases everywhere, untied embeddings).
inline model_config gpt_neox_config(index_t vocab, index_t hidden, index_t layers, index_t heads,
                                    index_t intermediate, index_t max_seq) {
  auto c = model_config::sized(vocab, hidden, layers, heads, heads, intermediate, max_seq);
  c.rotary_pct = 0.25;
  c.rotary_base = 10000;
  c.norm_eps = 1e-5;
  c.parallel_residual = true;
  c.tie_embeddings = false;
  c.attention_bias = true;
  c.mlp_bias = true;
  return c;
}

// Pythia-70M's shapes: 6 layers, 512 wide, 8 heads, vocab 50304, context 2048.
inline model_config pythia_70m_config() { return gpt_neox_config(50304, 512, 6, 8, 2048, 2048); }

}  // namespace hyena::models
