// nn/swiglu_mlp.hpp: Llama MLP, y = down(silu(gate x + b_g) * (up x + b_u)) + b_d; the biases
// only with `bias` (Hugging Face LlamaConfig.mlp_bias, false in Llama itself).
//
// gate and up are separate (intermediate, hidden) weights, as in PyTorch, but their
// products land side by side in one (rows, 2*intermediate) buffer [gate | up] (the
// GEMM's leading dimension does it), which is the layout the fused swiglu op reads.
// Their biases are copied side by side into one (2*intermediate) buffer [b_g | b_u], so one
// add_bias / bias_grad over the whole row serves both.
#pragma once
#include "linear.hpp"

namespace hyena::nn {

struct swiglu_mlp_config {
  index_t hidden = 0, intermediate = 0;
  double init_std = 0.02;
  bool bias = false;  // biases on gate, up and down (HF mlp_bias)
  static swiglu_mlp_config from(const model_config& m) {
    return {.hidden = m.hidden, .intermediate = m.intermediate, .bias = m.mlp_bias};
  }
  linear_config gate() const { return {.in = hidden, .out = intermediate, .bias = bias, .init_std = init_std}; }
  linear_config up() const { return gate(); }
  linear_config down() const { return {.in = intermediate, .out = hidden, .bias = bias, .init_std = init_std}; }
};

template <class B, class T>
struct swiglu_mlp {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = swiglu_mlp_config;
  using proj = linear<B, T>;

  struct params {
    typename proj::params gate, up, down;  // weights (out, in); biases (out) only with config.bias
    template <class W>
    void visit(W& w, const config& c) {
      auto wg = w.child("gate");
      gate.visit(wg, c.gate());
      auto wu = w.child("up");
      up.visit(wu, c.up());
      auto wd = w.child("down");
      down.visit(wd, c.down());
    }
  };

  struct cache {
    ctview x;                   // the input, kept by reference
    typename proj::cache down;  // view of h
    tview gate_up;              // (batch, seq, 2*intermediate): [gate x | up x]
    tview h;                    // (batch, seq, intermediate): silu(gate x) * up x
    tview dh;                   // (batch, seq, intermediate): backward scratch
    tview dgate_up;             // (batch, seq, 2*intermediate): backward scratch
    tview bias_gate_up;         // (2*intermediate): [b_g | b_u], only with bias
    tview dbias_gate_up;        // (2*intermediate): their gradient, backward scratch, only with bias
    template <class W>
    void visit(W& w, const config& c, index_t batch, index_t seq) {
      w("gate_up", gate_up, {batch, seq, 2 * c.intermediate});
      w("h", h, {batch, seq, c.intermediate});
      w("dh", dh, {batch, seq, c.intermediate});
      w("dgate_up", dgate_up, {batch, seq, 2 * c.intermediate});
      if (c.bias) {
        w("bias_gate_up", bias_gate_up, {2 * c.intermediate});
        w("dbias_gate_up", dbias_gate_up, {2 * c.intermediate});
      }
    }
  };

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.hidden}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.hidden}; }

  static void init(const config& c, params& p, rng& r) {
    proj::init(c.gate(), p.gate, r);
    proj::init(c.up(), p.up, r);
    proj::init(c.down(), p.down, r);
  }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y) {
    HYENA_CHECK(c.hidden > 0 && c.intermediate > 0, "swiglu_mlp: hidden (", c.hidden, ") and intermediate (",
                c.intermediate, ") must be positive");
    const index_t rows = rows_of(x, c.hidden, "swiglu_mlp input"), H = c.hidden, I = c.intermediate;
    check_same_shape(x, y, "swiglu_mlp output");
    tview gu = scratch(k.gate_up, rows, 2 * I), h = scratch(k.h, rows, I);
    B::gemm(ctx, false, true, rows, I, H, T(1), x.data, H, p.gate.weight.data, H, T(0), gu.data, 2 * I);
    B::gemm(ctx, false, true, rows, I, H, T(1), x.data, H, p.up.weight.data, H, T(0), gu.data + I, 2 * I);
    if (c.bias) {
      HYENA_CHECK(k.bias_gate_up.numel() == 2 * I, "swiglu_mlp: cache has no bias buffer (bound without bias?)");
      B::copy(ctx, I, p.gate.bias.data, k.bias_gate_up.data);
      B::copy(ctx, I, p.up.bias.data, k.bias_gate_up.data + I);
      B::add_bias(ctx, rows, 2 * I, k.bias_gate_up.data, gu.data);
    }
    B::swiglu_forward(ctx, rows, I, gu.data, h.data);
    proj::forward(ctx, c.down(), p.down, k.down, h, y.reshape({rows, H}));
    k.x = x;
  }

  static void backward(context& ctx, const config& c, const params& p, const cache& k, ctview dy, tview dx,
                       params& g) {
    const index_t rows = rows_of(dy, c.hidden, "swiglu_mlp output gradient"), H = c.hidden, I = c.intermediate;
    HYENA_CHECK(rows == k.x.numel() / H, "swiglu_mlp: gradient has ", rows, " rows, forward had ", k.x.numel() / H);
    if (!dx.empty()) {
      check_same_shape(dx, dy, "swiglu_mlp input gradient");
      HYENA_CHECK(dx.contiguous(), "swiglu_mlp input gradient: must be contiguous");
    }
    tview dh = scratch(k.dh, rows, I), dgu = scratch(k.dgate_up, rows, 2 * I);
    proj::backward(ctx, c.down(), p.down, k.down, dy.reshape({rows, H}), dh, g.down);
    B::swiglu_backward(ctx, rows, I, k.gate_up.data, dh.data, dgu.data);
    if (c.bias) {  // parameter grads accumulate: sum the rows into scratch, then add each half
      B::fill(ctx, 2 * I, T(0), k.dbias_gate_up.data);
      B::bias_grad(ctx, rows, 2 * I, dgu.data, k.dbias_gate_up.data);
      B::axpy(ctx, I, T(1), k.dbias_gate_up.data, g.gate.bias.data);
      B::axpy(ctx, I, T(1), k.dbias_gate_up.data + I, g.up.bias.data);
    }
    // Weight grads: d gate^T x and d up^T x, reading the two halves of dgate_up in place.
    B::gemm(ctx, true, false, I, H, rows, T(1), dgu.data, 2 * I, k.x.data, H, T(1), g.gate.weight.data, H);
    B::gemm(ctx, true, false, I, H, rows, T(1), dgu.data + I, 2 * I, k.x.data, H, T(1), g.up.weight.data, H);
    if (!dx.empty()) {
      B::gemm(ctx, false, false, rows, H, I, T(1), dgu.data, 2 * I, p.gate.weight.data, H, T(0), dx.data, H);
      B::gemm(ctx, false, false, rows, H, I, T(1), dgu.data + I, 2 * I, p.up.weight.data, H, T(1), dx.data, H);
    }
  }

 private:
  // The first `rows` rows of a cache buffer (inference may reuse a larger cache).
  static tview scratch(tview buf, index_t rows, index_t cols) {
    HYENA_CHECK(buf.numel() >= rows * cols, "swiglu_mlp: cache holds ", buf.numel() / cols, " rows, input has ",
                rows);
    return tview(buf.data, {rows, cols});
  }
};

}  // namespace hyena::nn
