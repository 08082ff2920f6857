// nn/rotary.hpp: rotary position embedding (GPT-NeoX / Hugging Face "rotate_half").
//
// Input and output (batch, seq, heads * head_dim). The first rot_dims dims of each head
// turn pairwise: dim i with dim i + rot_dims/2 by angle pos * base^(-2i/rot_dims), for
// positions 0..seq-1. Attention applies the same ops in place inside its fused qkv rows;
// this layer is the stand-alone form (and what the rotary tests check).
#pragma once
#include "layer.hpp"

namespace hyena::nn {

struct rotary_config {
  index_t heads = 1, head_dim = 0;
  index_t rot_dims = 0;  // even, <= head_dim; 0 leaves the input unchanged
  double base = 10000.0;

  // GPT-NeoX: int(head_dim * rotary_pct), here also rounded down to even.
  static index_t dims_for(index_t head_dim, double rotary_pct) {
    HYENA_CHECK(rotary_pct >= 0 && rotary_pct <= 1, "rotary: rotary_pct ", rotary_pct, " not in [0, 1]");
    index_t r = static_cast<index_t>(static_cast<double>(head_dim) * rotary_pct);
    return r - r % 2;
  }
  void validate() const {
    HYENA_CHECK(heads > 0 && head_dim > 0, "rotary: heads (", heads, ") and head_dim (", head_dim,
                ") must be positive");
    HYENA_CHECK(rot_dims >= 0 && rot_dims % 2 == 0 && rot_dims <= head_dim, "rotary: rot_dims ", rot_dims,
                " must be even and at most head_dim ", head_dim);
    HYENA_CHECK(base > 0, "rotary: base must be positive, got ", base);
  }
};

template <class B, class T>
struct rotary {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = rotary_config;

  struct params {  // none
    template <class W>
    void visit(W&, const config&) {}
  };
  struct cache {  // none: the rotation depends on position only
    template <class W>
    void visit(W&, const config&, index_t, index_t) {}
  };

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.heads * c.head_dim}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return input_shape(c, batch, seq); }

  static void init(const config& c, params&, rng&) { c.validate(); }

  // Rotates rows of a (batch, seq, row_stride) buffer in place; `heads` heads from its start.
  static void apply(context& ctx, const config& c, index_t batch, index_t seq, index_t row_stride, T* data) {
    if (c.rot_dims > 0)
      B::rotary_forward(ctx, batch, seq, c.heads, c.head_dim, row_stride, c.rot_dims, c.base, data);
  }
  static void apply_backward(context& ctx, const config& c, index_t batch, index_t seq, index_t row_stride, T* data) {
    if (c.rot_dims > 0)
      B::rotary_backward(ctx, batch, seq, c.heads, c.head_dim, row_stride, c.rot_dims, c.base, data);
  }

  static void forward(context& ctx, const config& c, const params&, cache&, ctview x, tview y) {
    c.validate();
    index_t width = c.heads * c.head_dim;
    HYENA_CHECK(x.rank() == 3, "rotary: input must be (batch, seq, heads * head_dim), got ", x.shape);
    rows_of(x, width, "rotary input");
    check_same_shape(x, y, "rotary output");
    HYENA_CHECK(y.contiguous(), "rotary output: must be contiguous");
    B::copy(ctx, x.numel(), x.data, y.data);
    apply(ctx, c, x.size(0), x.size(1), width, y.data);
  }

  static void backward(context& ctx, const config& c, const params&, const cache&, ctview dy, tview dx, params&) {
    if (dx.empty()) return;
    index_t width = c.heads * c.head_dim;
    HYENA_CHECK(dy.rank() == 3, "rotary: output gradient must be (batch, seq, heads * head_dim), got ", dy.shape);
    rows_of(dy, width, "rotary output gradient");
    check_same_shape(dy, dx, "rotary input gradient");
    HYENA_CHECK(dx.contiguous(), "rotary input gradient: must be contiguous");
    B::copy(ctx, dy.numel(), dy.data, dx.data);
    apply_backward(ctx, c, dy.size(0), dy.size(1), width, dx.data);
  }
};

}  // namespace hyena::nn
