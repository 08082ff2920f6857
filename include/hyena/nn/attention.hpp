// nn/attention.hpp: causal multi-head self-attention with rotary embeddings and
// grouped-query support (GPT-NeoX, Llama).
//
//   qkv = x Wqkv^T (+ b)           per position [q heads | k kv_heads | v kv_heads], head_dim each
//   q, k <- rotary(q, k)           first rot_dims dims of each head, in place in the qkv rows
//   P_h = causal_softmax(q_h k_g^T / sqrt(head_dim)),  g = h / (heads / kv_heads)
//   o_h = P_h v_g;   y = out(o)    o is (batch, seq, hidden), heads concatenated
// The core (scores, softmax, P v) is one backend op working straight on the fused qkv rows,
// so q, k and v are never copied out; it keeps only each softmax row's log-sum-exp, not the
// (seq x seq) probabilities, and backward recomputes them (see cpu/fused_attention.hpp).
#pragma once
#include <cmath>

#include "decode_positions.hpp"
#include "layer.hpp"
#include "linear.hpp"
#include "rotary.hpp"

namespace hyena::nn {

struct attention_config {
  index_t hidden = 0, heads = 1, kv_heads = 1;
  double rotary_pct = 1.0, rotary_base = 10000.0;
  bool bias = true;
  double init_std = 0.02;

  index_t head_dim() const { return hidden / heads; }
  index_t group() const { return heads / kv_heads; }  // query heads per kv head
  index_t qkv_dim() const { return (heads + 2 * kv_heads) * head_dim(); }
  index_t rot_dims() const { return rotary_config::dims_for(head_dim(), rotary_pct); }

  void validate() const {
    HYENA_CHECK(hidden > 0 && heads > 0 && kv_heads > 0, "attention: hidden (", hidden, "), heads (", heads,
                ") and kv_heads (", kv_heads, ") must be positive");
    HYENA_CHECK(hidden % heads == 0, "attention: hidden (", hidden, ") is not a multiple of heads (", heads, ")");
    HYENA_CHECK(heads % kv_heads == 0, "attention: heads (", heads, ") is not a multiple of kv_heads (", kv_heads,
                ")");
    HYENA_CHECK(rotary_pct >= 0 && rotary_pct <= 1, "attention: rotary_pct ", rotary_pct, " not in [0, 1]");
    HYENA_CHECK(rotary_base > 0, "attention: rotary_base must be positive, got ", rotary_base);
  }

  static attention_config from(const model_config& m) {
    return {.hidden = m.hidden, .heads = m.heads, .kv_heads = m.kv_heads, .rotary_pct = m.rotary_pct,
            .rotary_base = m.rotary_base, .bias = m.attention_bias};
  }
};

template <class B, class T>
struct attention {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = attention_config;
  using proj = linear<B, T>;
  using rope = rotary<B, T>;

  static linear_config qkv_config(const config& c) { return {c.hidden, c.qkv_dim(), c.bias, c.init_std}; }
  static linear_config out_config(const config& c) { return {c.hidden, c.hidden, c.bias, c.init_std}; }
  // q and k heads are adjacent at the start of each qkv row, so one rotary call covers both.
  static rotary_config rope_config(const config& c) {
    return {c.heads + c.kv_heads, c.head_dim(), c.rot_dims(), c.rotary_base};
  }

  struct params {
    typename proj::params qkv, out;
    template <class W>
    void visit(W& w, const config& c) {
      c.validate();
      auto wq = w.child("qkv");
      qkv.visit(wq, qkv_config(c));
      auto wo = w.child("out");
      out.visit(wo, out_config(c));
    }
  };

  struct cache {
    typename proj::cache qkv_proj, out_proj;  // views of their inputs
    tview qkv;    // (batch, seq, qkv_dim), q and k already rotated
    tview lse;    // (batch, heads, seq): log-sum-exp of each softmax row, to rebuild it in backward
    tview att;    // (batch, seq, hidden): heads concatenated, the input of "out"
    template <class W>
    void visit(W& w, const config& c, index_t batch, index_t seq) {
      c.validate();
      w("qkv", qkv, {batch, seq, c.qkv_dim()});
      w("lse", lse, {batch, c.heads, seq});
      w("att", att, {batch, seq, c.hidden});
      auto wq = w.child("qkv_proj");
      qkv_proj.visit(wq, qkv_config(c), batch, seq);
      auto wo = w.child("out_proj");
      out_proj.visit(wo, out_config(c), batch, seq);
    }
  };

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.hidden}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.hidden}; }

  static void init(const config& c, params& p, rng& r) {
    c.validate();
    proj::init(qkv_config(c), p.qkv, r);
    proj::init(out_config(c), p.out, r);
  }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y) {
    c.validate();
    HYENA_CHECK(x.rank() == 3 && x.size(2) == c.hidden, "attention: input must be (batch, seq, ", c.hidden,
                "), got ", x.shape);
    check_same_shape(x, y, "attention output");
    const index_t batch = x.size(0), seq = x.size(1), L = seq, D = c.head_dim(), Q = c.qkv_dim();
    check_cache(c, k, batch, seq);
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
    tview qkv(k.qkv.data, {batch, seq, Q}), att(k.att.data, {batch, seq, c.hidden});

    proj::forward(ctx, qkv_config(c), p.qkv, k.qkv_proj, x, qkv);
    rope::apply(ctx, rope_config(c), batch, seq, Q, qkv.data);

    B::causal_attention_forward(ctx, batch, L, c.heads, c.kv_heads, D, scale, qkv.data, Q, att.data, c.hidden,
                                k.lse.data);
    proj::forward(ctx, out_config(c), p.out, k.out_proj, att, y);
  }

  static void backward(context& ctx, const config& c, const params& p, const cache& k, ctview dy, tview dx,
                       params& g) {
    c.validate();
    HYENA_CHECK(dy.rank() == 3 && dy.size(2) == c.hidden, "attention: output gradient must be (batch, seq, ",
                c.hidden, "), got ", dy.shape);
    if (!dx.empty()) check_same_shape(dy, dx, "attention input gradient");
    const index_t batch = dy.size(0), seq = dy.size(1), L = seq, D = c.head_dim(), Q = c.qkv_dim();
    check_cache(c, k, batch, seq);
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));

    // Scratch that backward alone needs lives in the context, not in every layer's cache.
    T* ws = scratch(ctx, batch * seq * (Q + c.hidden));
    tview dqkv(ws, {batch, seq, Q}), datt(ws + batch * seq * Q, {batch, seq, c.hidden});
    proj::backward(ctx, out_config(c), p.out, k.out_proj, dy, datt, g.out);
    B::causal_attention_backward(ctx, batch, L, c.heads, c.kv_heads, D, scale, k.qkv.data, Q, k.att.data,
                                 datt.data, c.hidden, k.lse.data, dqkv.data);
    rope::apply_backward(ctx, rope_config(c), batch, seq, Q, dqkv.data);
    proj::backward(ctx, qkv_config(c), p.qkv, k.qkv_proj, dqkv, dx, g.qkv);
  }

  // ---- Incremental decoding (models/decoder.hpp) ---------------------------------------
  // The state of `rows` sequences of up to max_len tokens: the key/value cache (rotated keys).
  struct decode_state {
    tview k, v;       // (rows, max_len, kv_heads * head_dim)
    tview qkv, att;   // one step's (rows, 1, qkv_dim) and (rows, 1, hidden)
    typename proj::cache qkv_proj, out_proj;
    template <class W>
    void visit(W& w, const config& c, index_t rows, index_t max_len, index_t /*modes*/) {
      const index_t kv = c.kv_heads * c.head_dim();
      w("k", k, {rows, max_len, kv});
      w("v", v, {rows, max_len, kv});
      w("qkv", qkv, {rows, 1, c.qkv_dim()});
      w("att", att, {rows, 1, c.hidden});
    }
  };

  static void decode_setup(context&, const config&, const params&, decode_state&) {}

  // After a forward over (rows, len) with cache k: keep every row's keys and values.
  static void decode_begin(context& ctx, const config& c, const params&, const cache& k, decode_state& s,
                           index_t rows, index_t len) {
    const index_t Q = c.qkv_dim(), kv = c.kv_heads * c.head_dim(), max_len = s.k.size(1), H = c.heads * c.head_dim();
    HYENA_CHECK(len <= max_len, "attention decode: prompt of ", len, " tokens exceeds the cache's ", max_len);
    for (index_t r = 0; r < rows; ++r)
      for (index_t t = 0; t < len; ++t) {
        const T* row = k.qkv.data + (r * len + t) * Q;
        B::copy(ctx, kv, row + H, s.k.data + (r * max_len + t) * kv);
        B::copy(ctx, kv, row + H + kv, s.v.data + (r * max_len + t) * kv);
      }
  }

  // x (rows, 1, hidden): row r's token at position pos[r] (host memory) -> y; its key and value
  // join the cache.
  static void decode_step(context& ctx, const config& c, const params& p, decode_state& s, ctview x, tview y,
                          const index_t* pos) {
    const index_t rows = x.size(0), D = c.head_dim(), Q = c.qkv_dim(), kv = c.kv_heads * D, H = c.heads * D;
    const index_t max_len = s.k.size(1);
    for (index_t r = 0; r < rows; ++r)
      HYENA_CHECK(pos[r] >= 0 && pos[r] < max_len, "attention decode: position ", pos[r], " of row ", r,
                  " outside the cache's ", max_len);
    tview qkv(s.qkv.data, {rows, 1, Q}), att(s.att.data, {rows, 1, c.hidden});
    proj::forward(ctx, qkv_config(c), p.qkv, s.qkv_proj, x, qkv);
    const index_t* op_pos = positions_for_ops<B>(ctx, pos, rows);  // pos itself on the host
    B::rotary_at(ctx, rows, c.heads + c.kv_heads, D, Q, c.rot_dims(), c.rotary_base, op_pos, qkv.data);
    for (index_t r = 0; r < rows; ++r) {
      B::copy(ctx, kv, static_cast<const T*>(qkv.data + r * Q + H), s.k.data + (r * max_len + pos[r]) * kv);
      B::copy(ctx, kv, static_cast<const T*>(qkv.data + r * Q + H + kv), s.v.data + (r * max_len + pos[r]) * kv);
    }
    B::attention_decode(ctx, rows, c.heads, c.kv_heads, D, static_cast<T>(1.0 / std::sqrt(double(D))),
                        static_cast<const T*>(qkv.data), Q, static_cast<const T*>(s.k.data),
                        static_cast<const T*>(s.v.data), max_len, op_pos, att.data, c.hidden);
    proj::forward(ctx, out_config(c), p.out, s.out_proj, att, y);
  }

  // Row `row` starts again at position 0: its cached positions are overwritten as it goes.
  static void decode_reset(context&, const config&, decode_state&, index_t) {}

 private:
  // The cache may be bound for more than (batch, seq) (inference reuses it as scratch).
  static void check_cache(const config& c, const cache& k, index_t batch, index_t seq) {
    HYENA_CHECK(k.qkv.numel() >= batch * seq * c.qkv_dim() && k.att.numel() >= batch * seq * c.hidden &&
                    k.lse.numel() >= batch * c.heads * seq,
                "attention: cache too small for batch ", batch, ", seq ", seq, " (bind it with at least these)");
  }

  static T* scratch(context& ctx, index_t n) { return context_scratch<attention, B, T>(ctx, n); }
};

}  // namespace hyena::nn
