// models/config.hpp: the shape of a causal language model.
//
// One plain struct describes teachers and students alike; each layer reads the
// fields it needs (its `config::from(model_config)`).
#pragma once
#include <string>

#include "../config.hpp"

namespace hyena::models {

struct model_config {
  index_t vocab = 256;
  index_t hidden = 128;
  index_t layers = 4;
  index_t heads = 4;
  index_t kv_heads = 4;        // grouped-query attention when < heads
  index_t intermediate = 512;  // MLP width
  index_t max_seq = 256;       // longest sequence (the Hyena filter length)
  double rotary_pct = 1.0;     // fraction of each head's dims that rotary touches
  double rotary_base = 10000.0;
  double norm_eps = 1e-5;
  bool parallel_residual = true;  // GPT-NeoX: x + mixer(ln1 x) + mlp(ln2 x)
  bool tie_embeddings = false;
  bool attention_bias = true;  // bias on qkv and output projections (NeoX yes, Llama no)
  bool mlp_bias = true;

  // Hyena operator
  index_t hyena_order = 2;          // N: N-1 long convolutions
  index_t hyena_filter_order = 64;  // width of the implicit filter FFN
  index_t hyena_emb_dim = 33;       // positional features: 2K+1
  index_t hyena_filter_layers = 2;  // inner sin-FFN layers
  index_t hyena_short_filter = 3;   // short depthwise conv kernel
  double hyena_sin_freq = 1.0;      // initial frequency of the sin activations

  index_t head_dim() const { return hidden / heads; }

  // The sizes every architecture shares; the rest keeps its defaults.
  static model_config sized(index_t vocab, index_t hidden, index_t layers, index_t heads, index_t kv_heads,
                            index_t intermediate, index_t max_seq) {
    model_config c;
    c.vocab = vocab;
    c.hidden = hidden;
    c.layers = layers;
    c.heads = heads;
    c.kv_heads = kv_heads;
    c.intermediate = intermediate;
    c.max_seq = max_seq;
    return c;
  }

  void validate() const {
    HYENA_CHECK(vocab > 0 && hidden > 0 && layers > 0 && heads > 0 && intermediate > 0 && max_seq > 0,
                "model_config: vocab, hidden, layers, heads, intermediate and max_seq must be positive");
    HYENA_CHECK(hidden % heads == 0, "model_config: hidden (", hidden, ") is not a multiple of heads (", heads, ")");
    HYENA_CHECK(kv_heads > 0 && heads % kv_heads == 0, "model_config: heads (", heads,
                ") is not a multiple of kv_heads (", kv_heads, ")");
    HYENA_CHECK(rotary_pct >= 0 && rotary_pct <= 1, "model_config: rotary_pct ", rotary_pct, " not in [0, 1]");
    HYENA_CHECK(hyena_order >= 2, "model_config: hyena_order must be >= 2, got ", hyena_order);
    HYENA_CHECK(hyena_emb_dim >= 3 && hyena_emb_dim % 2 == 1, "model_config: hyena_emb_dim must be odd and >= 3, got ",
                hyena_emb_dim);
    HYENA_CHECK(norm_eps > 0, "model_config: norm_eps must be positive");
  }
};

}  // namespace hyena::models
