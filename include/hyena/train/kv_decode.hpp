// train/kv_decode.hpp: incremental decoding with a key/value cache for attention models.
//
// generate() recomputes the whole window for every new token (O(len^2) per sequence);
// sampling a corpus from a teacher needs the O(len) path: each step feeds one token per
// row, at that row's own position, and attends over the keys and values cached for it.
// Rows are independent sequences, so a finished row restarts (reset) while others go on.
// The block math is the model's own (its norm, MLP and projection layers on (rows, 1)
// inputs); only rotary-at-a-position and attention over the cache are written here, in
// the cpu_ref formulation. Needs a model whose mixer is nn::attention, in host memory.
#pragma once
#include <cmath>
#include <span>
#include <type_traits>
#include <vector>

#include "../backend/cpu_ref/attention.hpp"
#include "../models/causal_lm.hpp"
#include "../nn/attention.hpp"

namespace hyena::train {

template <class Model>
class kv_decoder {
 public:
  using B = typename Model::backend;
  using T = typename Model::scalar;
  using block = typename Model::block_type;
  using context = typename Model::context;
  using tview = view_of<B, T>;
  static_assert(std::is_same_v<typename block::mixer, nn::attention<B, T>>,
                "kv_decoder needs a model whose mixer is nn::attention");

  // `rows` sequences decoded side by side, each at most max_len tokens (<= max_seq).
  kv_decoder(const Model& m, index_t rows, index_t max_len)
      : m_(m), rows_(rows), max_len_(max_len), pos_(std::size_t(rows), 0) {
    const auto& c = m.config();
    HYENA_CHECK(rows > 0 && max_len > 0, "kv_decoder: rows and max_len must be positive, got ", rows, ", ", max_len);
    HYENA_CHECK(max_len <= c.max_seq, "kv_decoder: max_len ", max_len, " exceeds max_seq ", c.max_seq);
    kv_dim_ = c.kv_heads * c.head_dim();
    scratch_arena_.bind(s_, c, rows);
    kv_.assign(std::size_t(c.layers * 2), std::vector<T>(std::size_t(rows * max_len * kv_dim_)));
    ids_ = tensor<std::int32_t>(shape{rows, 1});
  }

  index_t rows() const { return rows_; }
  index_t position(index_t row) const { return pos_[std::size_t(row)]; }
  // The row starts a new sequence: its next token goes to position 0.
  void reset(index_t row) {
    HYENA_CHECK(row >= 0 && row < rows_, "kv_decoder: no row ", row);
    pos_[std::size_t(row)] = 0;
  }

  // Feeds tokens[r] to row r at its current position (then advances it); returns the
  // (rows, vocab) logits of the next token.
  const T* step(context& ctx, std::span<const std::int32_t> tokens) {
    const auto& c = m_.config();
    HYENA_CHECK(index_t(tokens.size()) == rows_, "kv_decoder: ", tokens.size(), " tokens for ", rows_, " rows");
    for (index_t r = 0; r < rows_; ++r) {
      HYENA_CHECK(pos_[std::size_t(r)] < max_len_, "kv_decoder: row ", r, " is full (", max_len_, " tokens)");
      HYENA_CHECK(tokens[std::size_t(r)] >= 0 && tokens[std::size_t(r)] < c.vocab, "kv_decoder: token ",
                  tokens[std::size_t(r)], " outside [0, ", c.vocab, ")");
      ids_.data()[r] = tokens[std::size_t(r)];
    }
    const auto& p = m_.parameters();
    const index_t n = rows_ * c.hidden;
    auto& k = s_.blk;
    Model::embed::forward(ctx, Model::embed_config(c), p.embedding, s_.emb, ids_.v(), s_.x);
    for (index_t l = 0; l < c.layers; ++l) {
      const auto& bp = p.blocks[std::size_t(l)];
      block::norm::forward(ctx, block::norm_config(c), bp.norm1, k.norm1, s_.x, k.norm1_out);
      attend(ctx, l, bp.mix, k.norm1_out, k.mixer_out);
      view_of<B, const T> mlp_in = s_.x;
      if (!c.parallel_residual) {
        B::add(ctx, n, s_.x.data, k.mixer_out.data, k.mid.data);
        mlp_in = k.mid;
      }
      block::norm::forward(ctx, block::norm_config(c), bp.norm2, k.norm2, mlp_in, k.norm2_out);
      block::mlp::forward(ctx, block::mlp_config(c), bp.ffn, k.ffn, k.norm2_out, k.mlp_out);
      if (c.parallel_residual) {
        B::axpy(ctx, n, T(1), k.mixer_out.data, s_.x.data);
        B::axpy(ctx, n, T(1), k.mlp_out.data, s_.x.data);
      } else {
        B::add(ctx, n, k.mid.data, k.mlp_out.data, s_.x.data);
      }
    }
    Model::norm::forward(ctx, block::norm_config(c), p.final_norm, s_.fnorm, s_.x, s_.final_out);
    typename Model::head::params hp = p.unembed;
    if (c.tie_embeddings) hp.weight = p.embedding.weight;
    Model::head::forward(ctx, Model::head_config(c), hp, s_.head, s_.final_out, s_.logits);
    for (auto& q : pos_) ++q;
    return s_.logits.data;
  }

 private:
  // Per-step buffers for (rows, 1) inputs.
  struct scratch {
    typename Model::embed::cache emb;
    typename block::cache blk;
    typename Model::norm::cache fnorm;
    typename Model::head::cache head;
    tview x, final_out, logits;
    template <class W>
    void visit(W&& w, const models::model_config& c, index_t rows) {
      auto wb = w.child("block");
      blk.visit(wb, c, rows, 1);
      auto wn = w.child("final_norm");
      fnorm.visit(wn, block::norm_config(c), rows, 1);
      w("x", x, {rows, 1, c.hidden});
      w("final_out", final_out, {rows, 1, c.hidden});
      w("logits", logits, {rows, 1, c.vocab});
    }
  };

  // Attention of one new position per row over that row's cached keys and values.
  void attend(context& ctx, index_t l, const typename block::mixer::params& mp, tview in, tview out) {
    using attn = typename block::mixer;
    const auto ac = block::mixer_config(m_.config());
    const index_t D = ac.head_dim(), Q = ac.qkv_dim(), H = ac.heads, G = ac.group(), rot = ac.rot_dims();
    auto& k = s_.blk.mix;
    tview qkv(k.qkv.data, {rows_, 1, Q}), att(k.att.data, {rows_, 1, ac.hidden});
    attn::proj::forward(ctx, attn::qkv_config(ac), mp.qkv, k.qkv_proj, in, qkv);
    T* kc = kv_[std::size_t(2 * l)].data();
    T* vc = kv_[std::size_t(2 * l + 1)].data();
    const double scale = 1.0 / std::sqrt(double(D));
    std::vector<double> sc;
    for (index_t r = 0; r < rows_; ++r) {
      const index_t pos = pos_[std::size_t(r)];
      T* row = qkv.data + r * Q;
      for (index_t h = 0; h < H + ac.kv_heads; ++h)  // rotate q and k heads at this position
        for (index_t i = 0; i < rot / 2; ++i) {
          const double a = backend::attention_detail::rotary_angle(pos, i, rot, ac.rotary_base);
          const double cs = std::cos(a), sn = std::sin(a);
          T* v = row + h * D;
          const double x1 = v[i], x2 = v[i + rot / 2];
          v[i] = static_cast<T>(x1 * cs - x2 * sn);
          v[i + rot / 2] = static_cast<T>(x2 * cs + x1 * sn);
        }
      T* kr = kc + (r * max_len_ + pos) * kv_dim_;
      T* vr = vc + (r * max_len_ + pos) * kv_dim_;
      for (index_t j = 0; j < kv_dim_; ++j) {
        kr[j] = row[H * D + j];
        vr[j] = row[H * D + kv_dim_ + j];
      }
      sc.resize(std::size_t(pos + 1));
      for (index_t h = 0; h < H; ++h) {
        const index_t g = h / G;
        const T* q = row + h * D;
        double mx = -HUGE_VAL, z = 0;
        for (index_t t = 0; t <= pos; ++t) {
          const T* kt = kc + (r * max_len_ + t) * kv_dim_ + g * D;
          double dot = 0;
          for (index_t j = 0; j < D; ++j) dot += double(q[j]) * double(kt[j]);
          sc[std::size_t(t)] = dot * scale;
          mx = std::max(mx, sc[std::size_t(t)]);
        }
        for (auto& s : sc) z += s = std::exp(s - mx);
        T* o = att.data + r * ac.hidden + h * D;
        for (index_t j = 0; j < D; ++j) {
          double acc = 0;
          for (index_t t = 0; t <= pos; ++t) acc += sc[std::size_t(t)] * double(vc[(r * max_len_ + t) * kv_dim_ + g * D + j]);
          o[j] = static_cast<T>(acc / z);
        }
      }
    }
    attn::proj::forward(ctx, attn::out_config(ac), mp.out, k.out_proj, att, out);
  }

  const Model& m_;
  index_t rows_, max_len_, kv_dim_ = 0;
  std::vector<index_t> pos_;
  scratch s_;
  arena<T, typename B::memory> scratch_arena_;
  std::vector<std::vector<T>> kv_;  // per layer: keys, then values, (rows, max_len, kv_dim)
  tensor<std::int32_t> ids_;
};

}  // namespace hyena::train
