// nn/layer_norm.hpp: LayerNorm over the last dimension (PyTorch's, biased variance).
#pragma once
#include "layer.hpp"

namespace hyena::nn {

struct layer_norm_config {
  index_t dim = 0;
  double eps = 1e-5;
  static layer_norm_config from(const model_config& m) { return {.dim = m.hidden, .eps = m.norm_eps}; }
};

template <class B, class T>
struct layer_norm {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = layer_norm_config;

  struct params {
    tview weight;  // (dim)
    tview bias;    // (dim)
    template <class W>
    void visit(W& w, const config& c) {
      w("weight", weight, {c.dim});
      w("bias", bias, {c.dim});
    }
  };

  struct cache {
    ctview x;            // the input, kept by reference
    tview mean, rstd;    // (batch, seq): per-row statistics
    template <class W>
    void visit(W& w, const config&, index_t batch, index_t seq) {
      w("mean", mean, {batch, seq});
      w("rstd", rstd, {batch, seq});
    }
  };

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.dim}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.dim}; }

  static void init(const config&, params& p, rng&) {
    fill_value(p.weight, T(1));
    fill_value(p.bias, T(0));
  }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y) {
    HYENA_CHECK(c.dim > 0 && c.eps > 0, "layer_norm: dim (", c.dim, ") and eps (", c.eps, ") must be positive");
    index_t rows = rows_of(x, c.dim, "layer_norm input");
    check_same_shape(x, y, "layer_norm output");
    HYENA_CHECK(y.contiguous(), "layer_norm output: must be contiguous");
    // The cache may be larger than needed (inference reuses it as scratch).
    HYENA_CHECK(k.mean.numel() >= rows && k.rstd.numel() >= rows, "layer_norm: cache holds ", k.mean.numel(),
                " rows, input has ", rows);
    B::layer_norm_forward(ctx, rows, c.dim, x.data, p.weight.data, p.bias.data, c.eps, y.data, k.mean.data,
                          k.rstd.data);
    k.x = x;
  }

  static void backward(context& ctx, const config& c, const params& p, const cache& k, ctview dy, tview dx,
                       params& g) {
    index_t rows = rows_of(dy, c.dim, "layer_norm output gradient");
    HYENA_CHECK(rows == k.x.numel() / c.dim, "layer_norm: gradient has ", rows, " rows, forward had ",
                k.x.numel() / c.dim);
    if (!dx.empty()) {
      check_same_shape(dx, dy, "layer_norm input gradient");
      HYENA_CHECK(dx.contiguous(), "layer_norm input gradient: must be contiguous");
    }
    B::layer_norm_backward(ctx, rows, c.dim, k.x.data, p.weight.data, k.mean.data, k.rstd.data, dy.data,
                           dx.empty() ? nullptr : dx.data, g.weight.data, g.bias.data);
  }
};

}  // namespace hyena::nn
