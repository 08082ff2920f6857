// nn/rms_norm.hpp: RMSNorm over the last dimension (Llama's: y = x / sqrt(mean(x^2) + eps) * w).
#pragma once
#include "layer.hpp"

namespace hyena::nn {

struct rms_norm_config {
  index_t dim = 0;
  double eps = 1e-5;
  static rms_norm_config from(const model_config& m) { return {.dim = m.hidden, .eps = m.norm_eps}; }
};

template <class B, class T>
struct rms_norm {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = rms_norm_config;

  struct params {
    tview weight;  // (dim)
    template <class W>
    void visit(W& w, const config& c) {
      w("weight", weight, {c.dim});
    }
  };

  struct cache {
    ctview x;    // the input, kept by reference
    tview rstd;  // (batch, seq)
    template <class W>
    void visit(W& w, const config&, index_t batch, index_t seq) {
      w("rstd", rstd, {batch, seq});
    }
  };

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.dim}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.dim}; }

  static void init(const config&, params& p, rng&) { fill_value(p.weight, T(1)); }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y) {
    HYENA_CHECK(c.dim > 0 && c.eps > 0, "rms_norm: dim (", c.dim, ") and eps (", c.eps, ") must be positive");
    index_t rows = rows_of(x, c.dim, "rms_norm input");
    check_same_shape(x, y, "rms_norm output");
    HYENA_CHECK(y.contiguous(), "rms_norm output: must be contiguous");
    HYENA_CHECK(k.rstd.numel() >= rows, "rms_norm: cache holds ", k.rstd.numel(), " rows, input has ", rows);
    B::rms_norm_forward(ctx, rows, c.dim, x.data, p.weight.data, c.eps, y.data, k.rstd.data);
    k.x = x;
  }

  static void backward(context& ctx, const config& c, const params& p, const cache& k, ctview dy, tview dx,
                       params& g) {
    index_t rows = rows_of(dy, c.dim, "rms_norm output gradient");
    HYENA_CHECK(rows == k.x.numel() / c.dim, "rms_norm: gradient has ", rows, " rows, forward had ",
                k.x.numel() / c.dim);
    if (!dx.empty()) {
      check_same_shape(dx, dy, "rms_norm input gradient");
      HYENA_CHECK(dx.contiguous(), "rms_norm input gradient: must be contiguous");
    }
    B::rms_norm_backward(ctx, rows, c.dim, k.x.data, p.weight.data, k.rstd.data, dy.data,
                         dx.empty() ? nullptr : dx.data, g.weight.data);
  }
};

}  // namespace hyena::nn
