// nn/attention.hpp: causal multi-head self-attention with rotary embeddings and
// grouped-query support (GPT-NeoX, Llama).
//
//   qkv = x Wqkv^T (+ b)           per position [q heads | k kv_heads | v kv_heads], head_dim each
//   q, k <- rotary(q, k)           first rot_dims dims of each head, in place in the qkv rows
//   P_h = causal_softmax(q_h k_g^T / sqrt(head_dim)),  g = h / (heads / kv_heads)
//   o_h = P_h v_g;   y = out(o)    o is (batch, seq, hidden), heads concatenated
// The per-head products run as batched gemms straight on the fused qkv rows (leading
// dimension qkv_dim), so q, k and v are never copied out.
#pragma once
#include <cmath>

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
    tview probs;  // (batch, heads, seq, seq), zero above the diagonal
    tview att;    // (batch, seq, hidden): heads concatenated, the input of "out"
    template <class W>
    void visit(W& w, const config& c, index_t batch, index_t seq) {
      c.validate();
      w("qkv", qkv, {batch, seq, c.qkv_dim()});
      w("probs", probs, {batch, c.heads, seq, seq});
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

    const T* qp = qkv.data;
    T* pp = k.probs.data;
    for_head_batches(c, batch, true, [&](const head_batch& hb) {  // scores = q k^T
      B::gemm_batched(ctx, false, true, L, L, D, T(1), qp + q_off(c, L, hb), Q, hb.h_step * D,
                      qp + k_off(c, L, hb), Q, hb.kv_step * D, T(0), pp + p_off(c, L, hb), L,
                      hb.h_step * L * L, hb.count);
    });
    B::causal_softmax_forward(ctx, batch * c.heads, L, scale, pp, pp);
    for_head_batches(c, batch, true, [&](const head_batch& hb) {  // o = P v
      B::gemm_batched(ctx, false, false, L, D, L, T(1), pp + p_off(c, L, hb), L, hb.h_step * L * L,
                      qp + v_off(c, L, hb), Q, hb.kv_step * D, T(0), att.data + o_off(c, L, hb), c.hidden,
                      hb.h_step * D, hb.count);
    });
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
    index_t n_qkv = batch * seq * Q, n_att = batch * seq * c.hidden;
    T* ws = scratch(ctx, n_qkv + n_att + batch * c.heads * L * L);
    tview dqkv(ws, {batch, seq, Q}), datt(ws + n_qkv, {batch, seq, c.hidden});
    T* dp = ws + n_qkv + n_att;
    const T* qp = k.qkv.data;
    const T* pp = k.probs.data;

    proj::backward(ctx, out_config(c), p.out, k.out_proj, dy, datt, g.out);
    for_head_batches(c, batch, true, [&](const head_batch& hb) {  // dP = dO v^T
      B::gemm_batched(ctx, false, true, L, L, D, T(1), datt.data + o_off(c, L, hb), c.hidden, hb.h_step * D,
                      qp + v_off(c, L, hb), Q, hb.kv_step * D, T(0), dp + p_off(c, L, hb), L,
                      hb.h_step * L * L, hb.count);
    });
    for_head_batches(c, batch, false, [&](const head_batch& hb) {  // dv = sum over the group of P^T dO
      B::gemm_batched(ctx, true, false, L, D, L, T(1), pp + p_off(c, L, hb), L, hb.h_step * L * L,
                      datt.data + o_off(c, L, hb), c.hidden, hb.h_step * D, hb.first ? T(0) : T(1),
                      dqkv.data + v_off(c, L, hb), Q, hb.kv_step * D, hb.count);
    });
    B::causal_softmax_backward(ctx, batch * c.heads, L, scale, pp, dp, dp);  // dP -> dS in place
    for_head_batches(c, batch, true, [&](const head_batch& hb) {  // dq = dS k
      B::gemm_batched(ctx, false, false, L, D, L, T(1), dp + p_off(c, L, hb), L, hb.h_step * L * L,
                      qp + k_off(c, L, hb), Q, hb.kv_step * D, T(0), dqkv.data + q_off(c, L, hb), Q,
                      hb.h_step * D, hb.count);
    });
    for_head_batches(c, batch, false, [&](const head_batch& hb) {  // dk = sum over the group of dS^T q
      B::gemm_batched(ctx, true, false, L, D, L, T(1), dp + p_off(c, L, hb), L, hb.h_step * L * L,
                      qp + q_off(c, L, hb), Q, hb.h_step * D, hb.first ? T(0) : T(1),
                      dqkv.data + k_off(c, L, hb), Q, hb.kv_step * D, hb.count);
    });
    rope::apply_backward(ctx, rope_config(c), batch, seq, Q, dqkv.data);
    proj::backward(ctx, qkv_config(c), p.qkv, k.qkv_proj, dqkv, dx, g.qkv);
  }

 private:
  // One gemm_batched call covers `count` heads of batch entry b: query heads h0, h0 + h_step, ...
  // with kv heads kv0, kv0 + kv_step, ... (kv_step 0 shares one kv head across its group).
  struct head_batch {
    index_t b, h0, kv0, count, h_step, kv_step;
    bool first;  // first call writing these kv heads (beta = 0), later ones accumulate
  };

  // Stripe form: call j pairs query heads j, j+g, j+2g, ... with kv heads 0, 1, 2, ...; no two
  // products of a call write the same kv head, so dk/dv can accumulate over j. Shared form
  // (allowed when nothing is accumulated into kv heads): one call per kv head over its g query
  // heads; used when groups are wider than the number of kv heads, giving larger batches.
  template <class Fn>
  static void for_head_batches(const config& c, index_t batch, bool allow_shared, Fn&& fn) {
    const index_t g = c.group();
    for (index_t b = 0; b < batch; ++b) {
      if (allow_shared && g > c.kv_heads) {
        for (index_t kh = 0; kh < c.kv_heads; ++kh) fn(head_batch{b, kh * g, kh, g, 1, 0, true});
      } else {
        for (index_t j = 0; j < g; ++j) fn(head_batch{b, j, 0, c.kv_heads, g, 1, j == 0});
      }
    }
  }

  // Element offsets of a head's first row: q, k, v inside qkv rows, probs, the attention output.
  static index_t q_off(const config& c, index_t L, const head_batch& hb) {
    return hb.b * L * c.qkv_dim() + hb.h0 * c.head_dim();
  }
  static index_t k_off(const config& c, index_t L, const head_batch& hb) {
    return hb.b * L * c.qkv_dim() + (c.heads + hb.kv0) * c.head_dim();
  }
  static index_t v_off(const config& c, index_t L, const head_batch& hb) {
    return hb.b * L * c.qkv_dim() + (c.heads + c.kv_heads + hb.kv0) * c.head_dim();
  }
  static index_t p_off(const config& c, index_t L, const head_batch& hb) { return (hb.b * c.heads + hb.h0) * L * L; }
  static index_t o_off(const config& c, index_t L, const head_batch& hb) {
    return hb.b * L * c.hidden + hb.h0 * c.head_dim();
  }

  // The cache may be bound for more than (batch, seq) (inference reuses it as scratch).
  static void check_cache(const config& c, const cache& k, index_t batch, index_t seq) {
    HYENA_CHECK(k.qkv.numel() >= batch * seq * c.qkv_dim() && k.att.numel() >= batch * seq * c.hidden &&
                    k.probs.numel() >= batch * c.heads * seq * seq,
                "attention: cache too small for batch ", batch, ", seq ", seq, " (bind it with at least these)");
  }

  struct workspace {
    tensor<T, typename B::memory> buf;
  };
  static T* scratch(context& ctx, index_t n) {
    auto& ws = ctx.template state<workspace>();
    if (ws.buf.numel() < n) ws.buf = tensor<T, typename B::memory>(shape{n});
    return ws.buf.data();
  }
};

}  // namespace hyena::nn
