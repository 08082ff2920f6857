// nn/linear.hpp: y = x W^T + b over the last dimension (W stored (out, in), as PyTorch).
#pragma once
#include "layer.hpp"

namespace hyena::nn {

struct linear_config {
  index_t in = 0, out = 0;
  bool bias = true;
  double init_std = 0.02;
};

template <class B, class T>
struct linear {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = linear_config;

  struct params {
    tview weight;  // (out, in)
    tview bias;    // (out), empty without bias
    template <class W>
    void visit(W&& w, const config& c) {
      w("weight", weight, {c.out, c.in});
      if (c.bias) w("bias", bias, {c.out});
    }
  };

  struct cache {
    ctview x;  // the input, kept by reference
    template <class W>
    void visit(W&&, const config&, index_t, index_t) {}
  };

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.in}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.out}; }

  static void init(const config& c, params& p, rng& r) {
    fill_normal(p.weight, r, c.init_std);
    if (c.bias) fill_value(p.bias, T(0));
  }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y) {
    index_t rows = rows_of(x, c.in, "linear input");
    HYENA_CHECK(rows_of(y, c.out, "linear output") == rows, "linear: output rows ", y.numel() / c.out,
                " != input rows ", rows);
    if (c.bias)
      B::gemm_bias(ctx, false, true, rows, c.out, c.in, x.data, c.in, p.weight.data, c.in, p.bias.data, y.data, c.out);
    else
      B::gemm(ctx, false, true, rows, c.out, c.in, T(1), x.data, c.in, p.weight.data, c.in, T(0), y.data, c.out);
    k.x = x;
  }

  static void backward(context& ctx, const config& c, const params& p, const cache& k, ctview dy, tview dx,
                       params& g) {
    index_t rows = rows_of(dy, c.out, "linear output gradient");
    if (!dx.empty())
      B::gemm(ctx, false, false, rows, c.in, c.out, T(1), dy.data, c.out, p.weight.data, c.in, T(0), dx.data, c.in);
    B::gemm(ctx, true, false, c.out, c.in, rows, T(1), dy.data, c.out, k.x.data, c.in, T(1), g.weight.data, c.in);
    if (c.bias) B::bias_grad(ctx, rows, c.out, dy.data, g.bias.data);
  }
};

}  // namespace hyena::nn
