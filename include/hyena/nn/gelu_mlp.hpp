// nn/gelu_mlp.hpp: GPT-NeoX MLP, y = fc_out(gelu(fc_in(x))), hidden -> intermediate -> hidden.
#pragma once
#include "gelu.hpp"
#include "linear.hpp"

namespace hyena::nn {

struct gelu_mlp_config {
  index_t hidden = 0, intermediate = 0;
  bool bias = true;
  double init_std = 0.02;
  static gelu_mlp_config from(const model_config& m) {
    return {.hidden = m.hidden, .intermediate = m.intermediate, .bias = m.mlp_bias};
  }
  linear_config fc_in() const { return {.in = hidden, .out = intermediate, .bias = bias, .init_std = init_std}; }
  linear_config fc_out() const { return {.in = intermediate, .out = hidden, .bias = bias, .init_std = init_std}; }
};

template <class B, class T>
struct gelu_mlp {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = gelu_mlp_config;
  using proj = linear<B, T>;

  struct params {
    typename proj::params fc_in, fc_out;
    template <class W>
    void visit(W& w, const config& c) {
      auto wi = w.child("fc_in");
      fc_in.visit(wi, c.fc_in());
      auto wo = w.child("fc_out");
      fc_out.visit(wo, c.fc_out());
    }
  };

  struct cache {
    typename proj::cache fc_in, fc_out;  // views of their inputs
    tview pre;   // (batch, seq, intermediate): fc_in output, the GELU input
    tview act;   // (batch, seq, intermediate): GELU output, fc_out's input
    template <class W>
    void visit(W& w, const config& c, index_t batch, index_t seq) {
      w("pre", pre, {batch, seq, c.intermediate});
      w("act", act, {batch, seq, c.intermediate});
    }
  };

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.hidden}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.hidden}; }

  static void init(const config& c, params& p, rng& r) {
    proj::init(c.fc_in(), p.fc_in, r);
    proj::init(c.fc_out(), p.fc_out, r);
  }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y) {
    HYENA_CHECK(c.hidden > 0 && c.intermediate > 0, "gelu_mlp: hidden (", c.hidden, ") and intermediate (",
                c.intermediate, ") must be positive");
    index_t rows = rows_of(x, c.hidden, "gelu_mlp input");
    check_same_shape(x, y, "gelu_mlp output");
    tview pre = scratch(k.pre, rows, c.intermediate), act = scratch(k.act, rows, c.intermediate);
    proj::forward(ctx, c.fc_in(), p.fc_in, k.fc_in, x.reshape({rows, c.hidden}), pre);
    B::gelu_forward(ctx, rows * c.intermediate, pre.data, act.data);
    proj::forward(ctx, c.fc_out(), p.fc_out, k.fc_out, act, y.reshape({rows, c.hidden}));
  }

  static void backward(context& ctx, const config& c, const params& p, const cache& k, ctview dy, tview dx,
                       params& g) {
    index_t rows = rows_of(dy, c.hidden, "gelu_mlp output gradient");
    HYENA_CHECK(rows == k.fc_in.x.numel() / c.hidden, "gelu_mlp: gradient has ", rows, " rows, forward had ",
                k.fc_in.x.numel() / c.hidden);
    // d act, then d pre in place: backward scratch from the context (nn/layer.hpp's context_scratch)
    tview d(context_scratch<gelu_mlp, B, T>(ctx, rows * c.intermediate), {rows, c.intermediate});
    proj::backward(ctx, c.fc_out(), p.fc_out, k.fc_out, dy.reshape({rows, c.hidden}), d, g.fc_out);
    B::gelu_backward(ctx, rows * c.intermediate, k.pre.data, d.data, d.data);  // in place: d act -> d pre
    if (!dx.empty()) check_same_shape(dx, dy, "gelu_mlp input gradient");
    tview dx2 = dx.empty() ? tview{} : dx.reshape({rows, c.hidden});
    proj::backward(ctx, c.fc_in(), p.fc_in, k.fc_in, d, dx2, g.fc_in);
  }

 private:
  // The first `rows` rows of a cache buffer (inference may reuse a larger cache).
  static tview scratch(tview buf, index_t rows, index_t cols) {
    HYENA_CHECK(buf.numel() >= rows * cols, "gelu_mlp: cache holds ", buf.numel() / cols, " rows, input has ", rows);
    return tview(buf.data, {rows, cols});
  }
};

}  // namespace hyena::nn
