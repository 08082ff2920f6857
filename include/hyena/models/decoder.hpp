// models/decoder.hpp: incremental decoding of any causal_lm whose mixer has a decode state.
//
//   models::decoder<Model> dec(model, ctx, rows, max_len);     // or with a modal form
//   const T* logits = dec.prefill(ctx, prompt);                 // (rows, L) tokens, one forward
//   logits = dec.step(ctx, next_tokens);                        // one token per row
//
// `rows` sequences run side by side, each at its own position; reset(row) restarts one (a
// finished document, say) while the others go on. The per-layer state belongs to the mixer
// (its nested `decode_state`, with decode_begin / decode_step / decode_reset: a key/value
// cache for attention, the short-conv ring and a history or a modal recurrence for Hyena);
// the block wiring is the model's own (block::forward_with), so each step computes exactly
// what the full forward computes at that position. Prefill runs the ordinary forward (FFT
// convolutions, fused attention) over the prompt and hands each layer's cache to its mixer.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "../nn/hyena_modal_form.hpp"
#include "../tensor/transfer.hpp"
#include "causal_lm.hpp"

namespace hyena::models {

// A mixer that can decode incrementally.
template <class M>
concept decodable_mixer = requires { typename M::decode_state; };

template <class Model>
class decoder {
 public:
  using block = typename Model::block_type;
  using mixer = typename block::mixer;
  using B = typename Model::backend;
  using T = typename Model::scalar;
  using context = typename Model::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  static_assert(decodable_mixer<mixer>, "models::decoder: the model's mixer declares no decode_state");

  // `modal`: decode the Hyena filters as recurrences (then positions are unbounded); else
  // exact, up to max_len (<= max_seq) tokens per row.
  decoder(const Model& m, context& ctx, index_t rows, index_t max_len, const nn::hyena_modal_form<T>* modal = nullptr)
      : m_(m), rows_(rows), max_len_(max_len), modes_(modal ? modal->modes : 0), pos_(std::size_t(rows), 0) {
    const auto& c = m.config();
    HYENA_CHECK(rows > 0 && max_len > 0, "decoder: rows and max_len must be positive, got ", rows, ", ", max_len);
    HYENA_CHECK(modes_ > 0 || max_len <= c.max_seq, "decoder: max_len ", max_len, " exceeds max_seq ", c.max_seq,
                " (only a modal Hyena form decodes past it)");
    if (modal) {
      HYENA_CHECK(index_t(modal->poles.size()) == c.layers, "decoder: the modal form has ", modal->poles.size(),
                  " layers, the model ", c.layers);
    }
    state_arena_.bind(states_, c, rows, max_len, modes_);
    for (index_t l = 0; l < c.layers; ++l) {
      auto& s = states_.layers[std::size_t(l)];
      if (modes_ > 0) {
        if constexpr (requires { s.poles; }) {
          const auto& mp = modal->poles[std::size_t(l)];
          const auto& mr = modal->residues[std::size_t(l)];
          HYENA_CHECK(mp.numel() == s.poles.numel() && mr.numel() == s.residues.numel(), "decoder: the modal form of ",
                      "layer ", l, " has ", mp.numel(), " pole values, the model needs ", s.poles.numel());
          copy_from_host(s.poles, mp.data());  // the modal form is a host tensor
          copy_from_host(s.residues, mr.data());
        } else {
          HYENA_FAIL("decoder: a modal form needs a Hyena model");
        }
      }
      mixer::decode_setup(ctx, block::mixer_config(c), m.parameters().blocks[std::size_t(l)].mix, s);
    }
    step_arena_.bind(step_, c, rows, index_t(1));
    ids_ = staged_ids(shape{rows, 1});
  }

  index_t rows() const { return rows_; }
  index_t max_len() const { return max_len_; }
  bool modal() const { return modes_ > 0; }
  std::size_t state_bytes() const { return state_arena_.bytes(); }  // every layer's decode state
  index_t position(index_t row) const { return pos_.at(std::size_t(row)); }

  // Every row restarts with its prompt (rows, L): one forward over the prompt fills each
  // layer's state; returns the (rows, vocab) logits of each row's next token.
  const T* prefill(context& ctx, view_of<B, const std::int32_t> tokens) {
    const auto& c = m_.config();
    HYENA_CHECK(tokens.rank() == 2 && tokens.size(0) == rows_ && tokens.size(1) >= 1,
                "decoder: prefill wants (", rows_, ", L >= 1) tokens, got ", tokens.shape);
    const index_t L = tokens.size(1);
    HYENA_CHECK(modes_ > 0 || L <= max_len_, "decoder: prompt of ", L, " tokens exceeds max_len ", max_len_);
    HYENA_CHECK(L <= c.max_seq, "decoder: prompt of ", L, " tokens exceeds max_seq ", c.max_seq);
    for (index_t r = 0; r < rows_; ++r) reset(ctx, r);
    if (L != prompt_len_) {
      prompt_arena_.bind(prompt_, c, rows_, L);
      prompt_len_ = L;
    }
    const auto& p = m_.parameters();
    Model::embed::forward(ctx, Model::embed_config(c), p.embedding, prompt_.emb, tokens, prompt_.a);
    tview in = prompt_.a, out = prompt_.b;
    for (index_t l = 0; l < c.layers; ++l) {
      const auto& bp = p.blocks[std::size_t(l)];
      block::forward(ctx, c, bp, prompt_.blk, in, out);
      mixer::decode_begin(ctx, block::mixer_config(c), bp.mix, prompt_.blk.mix, states_.layers[std::size_t(l)], rows_,
                          L);
      std::swap(in, out);
    }
    // Only the last position of each row goes through the head.
    for (index_t r = 0; r < rows_; ++r)
      B::copy(ctx, c.hidden, static_cast<const T*>(in.data + (r * L + L - 1) * c.hidden), step_.x.data + r * c.hidden);
    for (auto& q : pos_) q = L;
    return head(ctx);
  }

  // Feeds tokens[r] to row r at its position (then advances it); returns the (rows, vocab)
  // logits of each row's next token.
  const T* step(context& ctx, std::span<const std::int32_t> tokens) {
    const auto& c = m_.config();
    HYENA_CHECK(index_t(tokens.size()) == rows_, "decoder: ", tokens.size(), " tokens for ", rows_, " rows");
    for (index_t r = 0; r < rows_; ++r) {
      HYENA_CHECK(modes_ > 0 || pos_[std::size_t(r)] < max_len_, "decoder: row ", r, " is full (", max_len_,
                  " tokens)");
      HYENA_CHECK(tokens[std::size_t(r)] >= 0 && tokens[std::size_t(r)] < c.vocab, "decoder: token ",
                  tokens[std::size_t(r)], " outside [0, ", c.vocab, ")");
      ids_.host.data()[r] = tokens[std::size_t(r)];
    }
    ids_.upload();
    const auto& p = m_.parameters();
    Model::embed::forward(ctx, Model::embed_config(c), p.embedding, step_.emb, ids_.in_memory(), step_.x);
    tview in = step_.x, out = step_.y;
    for (index_t l = 0; l < c.layers; ++l) {
      const auto& bp = p.blocks[std::size_t(l)];
      auto& state = states_.layers[std::size_t(l)];
      block::forward_with(ctx, c, bp, step_.blk, in, out, [&](ctview a, tview y) {
        mixer::decode_step(ctx, block::mixer_config(c), bp.mix, state, a, y, pos_.data());
      });
      std::swap(in, out);
    }
    if (in.data != step_.x.data) B::copy(ctx, in.numel(), static_cast<const T*>(in.data), step_.x.data);
    for (auto& q : pos_) ++q;
    return head(ctx);
  }

  // Row `row` starts a new sequence: its next token goes to position 0.
  void reset(context& ctx, index_t row) {
    HYENA_CHECK(row >= 0 && row < rows_, "decoder: no row ", row);
    pos_[std::size_t(row)] = 0;
    const auto& c = m_.config();
    for (index_t l = 0; l < c.layers; ++l)
      mixer::decode_reset(ctx, block::mixer_config(c), states_.layers[std::size_t(l)], row);
  }

 private:
  // Final norm and unembedding of step_.x, (rows, 1, hidden) -> (rows, vocab).
  const T* head(context& ctx) {
    const auto& c = m_.config();
    const auto& p = m_.parameters();
    Model::norm::forward(ctx, block::norm_config(c), p.final_norm, step_.fnorm, step_.x, step_.final_out);
    typename Model::head::params hp = p.unembed;
    if (c.tie_embeddings) hp.weight = p.embedding.weight;
    Model::head::forward(ctx, Model::head_config(c), hp, step_.head, step_.final_out, step_.logits);
    return step_.logits.data;
  }

  struct layer_states {
    std::vector<typename mixer::decode_state> layers;
    template <class W>
    void visit(W&& w, const typename Model::config_type& c, index_t rows, index_t max_len, index_t modes) {
      layers.resize(std::size_t(c.layers));
      auto ws = w.child("layers");
      for (index_t l = 0; l < c.layers; ++l) {
        auto wl = ws.child(l);
        layers[std::size_t(l)].visit(wl, block::mixer_config(c), rows, max_len, modes);
      }
    }
  };
  // Activations of a (rows, len) pass: one step (len 1) or a prompt.
  struct pass {
    typename Model::embed::cache emb;
    typename block::cache blk;
    typename Model::norm::cache fnorm;
    typename Model::head::cache head;
    tview a, b, x, y, final_out, logits;
    template <class W>
    void visit(W&& w, const typename Model::config_type& c, index_t rows, index_t len) {
      auto wb = w.child("block");
      blk.visit(wb, c, rows, len);
      auto wn = w.child("final_norm");
      fnorm.visit(wn, block::norm_config(c), rows, index_t(1));
      w("a", a, {rows, len, c.hidden});
      w("b", b, {rows, len, c.hidden});
      w("x", x, {rows, 1, c.hidden});
      w("y", y, {rows, 1, c.hidden});
      w("final_out", final_out, {rows, 1, c.hidden});
      w("logits", logits, {rows, 1, c.vocab});
    }
  };

  const Model& m_;
  index_t rows_, max_len_, modes_;
  std::vector<index_t> pos_;
  layer_states states_;
  pass step_, prompt_;
  arena<T, typename B::memory> state_arena_, step_arena_, prompt_arena_;
  index_t prompt_len_ = -1;
  // One step's token ids: written on the host, then copied where the model's tensors live.
  struct staged_ids {
    tensor<std::int32_t> host;
    tensor<std::int32_t, typename B::memory> dev;
    staged_ids() = default;
    explicit staged_ids(const shape& s) : host(s), dev(s) {}
    void upload() { copy_from_host(dev.v(), host.data()); }
    view_of<B, const std::int32_t> in_memory() { return dev.v(); }
  };
  staged_ids ids_;
};

}  // namespace hyena::models
