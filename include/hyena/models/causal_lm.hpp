// models/causal_lm.hpp: embedding -> N blocks -> final norm -> unembedding.
//
// The model owns four arenas: parameters, gradients (same layout), and activations
// sized for (batch, seq) in training or inference mode. Inference mode keeps one
// block's cache and two residual buffers, reused layer after layer.
//
// Besides the whole forward and backward, a caller may stop the forward at any block
// (`forward_to`) and start the backward at any block (`d_hidden` + `backward_from`), so a
// layer-wise objective runs only the layers it needs (train/distill.hpp's stage 1).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "../nn/embedding.hpp"
#include "../nn/linear.hpp"
#include "block.hpp"
#include "hooks.hpp"

namespace hyena::models {

enum class mode { train, infer };

template <class Block>
class causal_lm {
 public:
  using block_type = Block;
  using backend = typename Block::backend;
  using scalar = typename Block::scalar;
  using B = backend;
  using T = scalar;
  using context = typename B::context;
  using memory = typename B::memory;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using ids_view = view_of<B, const std::int32_t>;
  using embed = nn::embedding<B, T>;
  using head = nn::linear<B, T>;
  using norm = typename Block::norm;
  using hooks_type = hooks<T, memory>;
  using config_type = typename Block::config;  // model_config + the mixer's hparams
  using mixer_hparams = typename Block::mixer_hparams;

  struct params {
    typename embed::params embedding;
    std::vector<typename Block::params> blocks;
    typename norm::params final_norm;
    typename head::params unembed;  // empty when tied to the embedding
    template <class W>
    void visit(W&& w, const config_type& c) {
      blocks.resize(c.layers);
      auto e = w.child("embed");
      embedding.visit(e, embed_config(c));
      auto bs = w.child("blocks");
      for (index_t l = 0; l < c.layers; ++l) {
        auto b = bs.child(l);
        blocks[l].visit(b, c);
      }
      auto fn = w.child("final_norm");
      final_norm.visit(fn, Block::norm_config(c));
      if (!c.tie_embeddings) {
        auto u = w.child("unembed");
        unembed.visit(u, head_config(c));
      }
    }
  };

  struct activations {
    typename embed::cache embedding;
    std::vector<typename Block::cache> blocks;
    std::vector<tview> resid;  // resid[l] is block l's input; resid[layers] the last output
    typename norm::cache final_norm;
    tview final_out;
    typename head::cache unembed;
    tview logits, dlogits;
    tview d_resid_a, d_resid_b, d_final;
    template <class W>
    void visit(W&& w, const config_type& c, index_t batch, index_t seq, mode m) {
      shape s{batch, seq, c.hidden}, sl{batch, seq, c.vocab};
      const index_t n_caches = m == mode::train ? c.layers : 1;
      const index_t n_resid = m == mode::train ? c.layers + 1 : 2;
      blocks.resize(n_caches);
      resid.resize(n_resid);
      auto e = w.child("embed");
      embedding.visit(e, embed_config(c), batch, seq);
      auto bs = w.child("blocks");
      for (index_t l = 0; l < n_caches; ++l) {
        auto b = bs.child(l);
        blocks[l].visit(b, c, batch, seq);
      }
      for (index_t l = 0; l < n_resid; ++l) w("resid." + std::to_string(l), resid[l], s);
      auto fn = w.child("final_norm");
      final_norm.visit(fn, Block::norm_config(c), batch, seq);
      w("final_out", final_out, s);
      auto u = w.child("unembed");
      unembed.visit(u, head_config(c), batch, seq);
      w("logits", logits, sl);
      if (m == mode::train) {
        w("dlogits", dlogits, sl);
        w("d_resid_a", d_resid_a, s);
        w("d_resid_b", d_resid_b, s);
        w("d_final", d_final, s);
      }
    }
  };

  static typename embed::config embed_config(const model_config& c) { return embed::config::from(c); }
  static typename head::config head_config(const model_config& c) {
    return {.in = c.hidden, .out = c.vocab, .bias = false};
  }

  explicit causal_lm(const config_type& c) : cfg_(c) {
    cfg_.validate();
    param_arena_.bind(params_, cfg_);
    grad_arena_.bind(grads_, cfg_);
  }
  causal_lm(causal_lm&&) = default;
  causal_lm& operator=(causal_lm&&) = default;

  const config_type& config() const { return cfg_; }
  params& parameters() { return params_; }
  const params& parameters() const { return params_; }
  params& gradients() { return grads_; }
  arena<T, memory>& parameter_arena() { return param_arena_; }
  arena<T, memory>& gradient_arena() { return grad_arena_; }
  activations& acts() { return acts_; }
  index_t parameter_count() const {
    index_t n = 0;
    for_each_tensor<T, memory>(const_cast<params&>(params_), [&](const std::string&, tview& v, const shape&) { n += v.numel(); }, cfg_);
    return n;
  }

  // fn(name, parameter, gradient) for every parameter tensor.
  template <class Fn>
  void for_each_parameter(Fn&& fn) {
    std::vector<tview> gs;
    for_each_tensor<T, memory>(grads_, [&](const std::string&, tview& v, const shape&) { gs.push_back(v); }, cfg_);
    std::size_t i = 0;
    for_each_tensor<T, memory>(params_, [&](const std::string& name, tview& v, const shape&) { fn(name, v, gs[i++]); }, cfg_);
  }

  void init(rng& r) {
    embed::init(embed_config(cfg_), params_.embedding, r);
    for (auto& b : params_.blocks) Block::init(cfg_, b, r);
    norm::init(Block::norm_config(cfg_), params_.final_norm, r);
    if (!cfg_.tie_embeddings) head::init(head_config(cfg_), params_.unembed, r);
  }

  void zero_grad() { grad_arena_.zero(); }

  // Sizes the activation arena; forward calls it when (batch, seq) changes.
  void reserve(index_t batch, index_t seq, mode m) {
    HYENA_CHECK(batch > 0 && seq > 0, "causal_lm: batch and seq must be positive, got ", batch, " x ", seq);
    HYENA_CHECK(seq <= cfg_.max_seq, "causal_lm: sequence length ", seq, " exceeds max_seq ", cfg_.max_seq);
    if (batch == batch_ && seq == seq_ && m == mode_) return;
    act_arena_.bind(acts_, cfg_, batch, seq, m);
    batch_ = batch;
    seq_ = seq;
    mode_ = m;
  }
  mode current_mode() const { return mode_; }
  index_t batch() const { return batch_; }
  index_t seq() const { return seq_; }
  std::size_t activation_bytes() const { return act_arena_.bytes(); }

  // tokens (batch, seq) -> logits (batch, seq, vocab). In training mode every block keeps
  // its cache for backward.
  ctview forward(context& ctx, ids_view tokens, const hooks_type* h = nullptr) {
    auto& a = acts_;
    ctview last = forward_to(ctx, tokens, cfg_.layers, h);
    norm::forward(ctx, Block::norm_config(cfg_), params_.final_norm, a.final_norm, last, a.final_out);
    head::forward(ctx, head_config(cfg_), unembed_params(params_), a.unembed, a.final_out, a.logits);
    return a.logits;
  }

  // The embedding and blocks 0 .. layer-1 only: returns block `layer`'s input (for
  // layer == layers, the last block's output), (batch, seq, hidden). Nothing above runs.
  ctview forward_to(context& ctx, ids_view tokens, index_t layer, const hooks_type* h = nullptr) {
    HYENA_CHECK(tokens.rank() == 2, "causal_lm: tokens must be (batch, seq), got ", tokens.shape);
    HYENA_CHECK(layer >= 0 && layer <= cfg_.layers, "causal_lm: forward_to(", layer, ") outside [0, ", cfg_.layers,
                "]");
    reserve(tokens.size(0), tokens.size(1), mode_);
    auto& a = acts_;
    embed::forward(ctx, embed_config(cfg_), params_.embedding, a.embedding, tokens, a.resid[0]);
    for (index_t l = 0; l < layer; ++l) {
      auto& cache = block_cache(l);
      tview in = resid(l), out = resid(l + 1);
      Block::forward(ctx, cfg_, params_.blocks[l], cache, in, out);
      if (h && h->on_forward) {
        h->on_forward(l, hook_point::block_input, in);
        h->on_forward(l, hook_point::mixer_output, cache.mixer_out);
        h->on_forward(l, hook_point::block_output, out);
      }
    }
    return resid(layer);
  }

  // Where the caller writes d(loss)/d(logits) before backward (training mode).
  tview dlogits() {
    HYENA_CHECK(mode_ == mode::train, "causal_lm: dlogits needs training mode");
    return acts_.dlogits;
  }

  // Backpropagates dlogits() through the last forward; parameter gradients accumulate.
  void backward(context& ctx, const hooks_type* h = nullptr) {
    HYENA_CHECK(mode_ == mode::train, "causal_lm: backward needs a forward in training mode");
    auto& a = acts_;
    auto ug = unembed_params(grads_);
    head::backward(ctx, head_config(cfg_), unembed_params(params_), a.unembed, a.dlogits, a.d_final, ug);
    norm::backward(ctx, Block::norm_config(cfg_), params_.final_norm, a.final_norm, a.d_final, a.d_resid_a,
                   grads_.final_norm);
    backward_from(ctx, cfg_.layers - 1, 0, h);
  }

  // Where the caller writes d(loss)/d(output of block `layer`) before backward_from(layer)
  // (training mode), (batch, seq, hidden).
  tview d_hidden() {
    HYENA_CHECK(mode_ == mode::train, "causal_lm: d_hidden needs training mode");
    return acts_.d_resid_a;
  }

  // Backpropagates d_hidden(), the gradient w.r.t. block `layer`'s output, through blocks
  // layer, layer-1, ..., down_to, and through the embedding when down_to == 0. The forward
  // must have reached that block (forward_to(layer + 1) or more) in training mode.
  void backward_from(context& ctx, index_t layer, index_t down_to = 0, const hooks_type* h = nullptr) {
    HYENA_CHECK(mode_ == mode::train, "causal_lm: backward needs a forward in training mode");
    HYENA_CHECK(layer >= 0 && layer < cfg_.layers && down_to >= 0 && down_to <= layer, "causal_lm: backward_from(",
                layer, ", down_to ", down_to, ") outside the ", cfg_.layers, " layers");
    auto& a = acts_;
    tview d = a.d_resid_a, d_next = a.d_resid_b;
    for (index_t l = layer; l >= down_to; --l) {
      if (h && h->on_backward) h->on_backward(l, hook_point::block_output, d);
      std::function<void(tview)> mixer_hook;
      if (h && h->on_backward) mixer_hook = [&](tview dm) { h->on_backward(l, hook_point::mixer_output, dm); };
      Block::backward(ctx, cfg_, params_.blocks[l], a.blocks[l], d, d_next, grads_.blocks[l], mixer_hook);
      std::swap(d, d_next);
      if (h && h->on_backward) h->on_backward(l, hook_point::block_input, d);
    }
    if (down_to == 0) embed::backward(ctx, embed_config(cfg_), params_.embedding, a.embedding, d, grads_.embedding);
  }

  // The parameters of block `layer` (and their gradients): what layer-wise training works on.
  typename Block::params& block_parameters(index_t layer) { return params_.blocks.at(std::size_t(layer)); }
  typename Block::params& block_gradients(index_t layer) { return grads_.blocks.at(std::size_t(layer)); }

  // Activation of block `layer` at `point` from the last training-mode forward.
  tview activation(index_t layer, hook_point point) {
    HYENA_CHECK(mode_ == mode::train, "causal_lm: stored activations need training mode (use hooks in inference)");
    HYENA_CHECK(layer >= 0 && layer < cfg_.layers, "causal_lm: no layer ", layer);
    switch (point) {
      case hook_point::block_input: return acts_.resid[layer];
      case hook_point::mixer_output: return acts_.blocks[layer].mixer_out;
      default: return acts_.resid[layer + 1];
    }
  }

 private:
  // Block l's cache and its input / output buffers: every layer's own in training mode, one
  // cache and two alternating buffers in inference mode.
  typename Block::cache& block_cache(index_t l) { return acts_.blocks[mode_ == mode::train ? l : 0]; }
  tview resid(index_t l) { return acts_.resid[mode_ == mode::train ? l : l % 2]; }

  // The unembedding's parameters: its own, or the embedding table when tied.
  typename head::params unembed_params(params& p) const {
    if (!cfg_.tie_embeddings) return p.unembed;
    typename head::params tied;
    tied.weight = p.embedding.weight;
    return tied;
  }
  typename head::params unembed_params(const params& p) const { return unembed_params(const_cast<params&>(p)); }

  config_type cfg_;
  params params_, grads_;
  activations acts_;
  arena<T, memory> param_arena_, grad_arena_, act_arena_;
  index_t batch_ = 0, seq_ = 0;
  mode mode_ = mode::train;
};

}  // namespace hyena::models
