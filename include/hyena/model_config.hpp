// model_config.hpp: the shape of a causal language model, shared by every layer.
//
// One plain struct describes what teachers and students have in common (sizes, norms,
// attention layout, residual form); each layer's `config::from(model_config)` reads the
// fields it needs. A mixer's own hyperparameters (a Hyena operator's order or filter
// width, say) are not here: the mixer declares them as its `hparams` (see nn/mixer.hpp).
// It sits below nn/ and models/ so that layers never include the model headers.
#pragma once
#include "config.hpp"

namespace hyena {

struct model_config {
  index_t vocab = 256;
  index_t hidden = 128;
  index_t layers = 4;
  index_t heads = 4;
  index_t kv_heads = 4;        // grouped-query attention when < heads
  index_t intermediate = 512;  // MLP width
  index_t max_seq = 256;       // longest sequence (a Hyena student's filter length too)
  double rotary_pct = 1.0;     // fraction of each head's dims that rotary touches
  double rotary_base = 10000.0;
  double norm_eps = 1e-5;
  bool parallel_residual = true;  // GPT-NeoX: x + mixer(ln1 x) + mlp(ln2 x)
  bool tie_embeddings = false;
  bool attention_bias = true;  // bias on qkv and output projections (NeoX yes, Llama no)
  bool mlp_bias = true;

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

  // fn(name, field) for every field, in a fixed order (JSON, CLI, comparisons).
  template <class Self, class Fn>
  static void visit_fields(Self& c, Fn&& fn) {
    fn("vocab", c.vocab);
    fn("hidden", c.hidden);
    fn("layers", c.layers);
    fn("heads", c.heads);
    fn("kv_heads", c.kv_heads);
    fn("intermediate", c.intermediate);
    fn("max_seq", c.max_seq);
    fn("rotary_pct", c.rotary_pct);
    fn("rotary_base", c.rotary_base);
    fn("norm_eps", c.norm_eps);
    fn("parallel_residual", c.parallel_residual);
    fn("tie_embeddings", c.tie_embeddings);
    fn("attention_bias", c.attention_bias);
    fn("mlp_bias", c.mlp_bias);
  }

  void validate() const {
    HYENA_CHECK(vocab > 0 && hidden > 0 && layers > 0 && heads > 0 && intermediate > 0 && max_seq > 0,
                "model_config: vocab, hidden, layers, heads, intermediate and max_seq must be positive");
    HYENA_CHECK(hidden % heads == 0, "model_config: hidden (", hidden, ") is not a multiple of heads (", heads, ")");
    HYENA_CHECK(kv_heads > 0 && heads % kv_heads == 0, "model_config: heads (", heads,
                ") is not a multiple of kv_heads (", kv_heads, ")");
    HYENA_CHECK(rotary_pct >= 0 && rotary_pct <= 1, "model_config: rotary_pct ", rotary_pct, " not in [0, 1]");
    HYENA_CHECK(norm_eps > 0, "model_config: norm_eps must be positive");
  }
};

}  // namespace hyena
