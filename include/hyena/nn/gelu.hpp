// nn/gelu.hpp: GELU activation, exact erf form (GPT-NeoX's "gelu"), y = x * Phi(x).
#pragma once
#include "layer.hpp"

namespace hyena::nn {

struct gelu_config {
  index_t dim = 0;
};

template <class B, class T>
struct gelu {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = gelu_config;

  struct params {
    template <class W>
    void visit(W&, const config&) {}
  };

  struct cache {
    ctview x;  // the input, kept by reference
    template <class W>
    void visit(W&, const config&, index_t, index_t) {}
  };

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.dim}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.dim}; }

  static void init(const config&, params&, rng&) {}

  static void forward(context& ctx, const config& c, const params&, cache& k, ctview x, tview y) {
    index_t rows = rows_of(x, c.dim, "gelu input");
    check_same_shape(x, y, "gelu output");
    HYENA_CHECK(y.contiguous(), "gelu output: must be contiguous");
    B::gelu_forward(ctx, rows * c.dim, x.data, y.data);
    k.x = x;
  }

  static void backward(context& ctx, const config& c, const params&, const cache& k, ctview dy, tview dx, params&) {
    rows_of(dy, c.dim, "gelu output gradient");
    check_same_shape(dy, k.x, "gelu output gradient");
    if (dx.empty()) return;
    check_same_shape(dx, dy, "gelu input gradient");
    HYENA_CHECK(dx.contiguous(), "gelu input gradient: must be contiguous");
    B::gelu_backward(ctx, dy.numel(), k.x.data, dy.data, dx.data);
  }
};

}  // namespace hyena::nn
