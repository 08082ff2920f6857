// nn/short_conv.hpp: causal depthwise convolution with a short kernel (Hyena's "short filter").
//
//   y[b,t,c] = bias[c] + sum_{k<K} weight[c,k] x[b, t-(K-1)+k, c]
//
// i.e. PyTorch's Conv1d(C, C, K, groups=C, padding=K-1) on (batch, C, seq) keeping the first
// seq outputs, with its weight (C, 1, K) stored as (C, K).
#pragma once
#include <cmath>

#include "layer.hpp"

namespace hyena::nn {

struct short_conv_config {
  index_t channels = 0, kernel = 3;
};

template <class B, class T>
struct short_conv {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = short_conv_config;

  struct params {
    tview weight;  // (channels, kernel)
    tview bias;    // (channels)
    template <class W>
    void visit(W&& w, const config& c) {
      w("weight", weight, {c.channels, c.kernel});
      w("bias", bias, {c.channels});
    }
  };

  struct cache {
    ctview x;  // the input, kept by reference
    template <class W>
    void visit(W&&, const config&, index_t, index_t) {}
  };

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.channels}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.channels}; }

  static void check(const config& c) {
    HYENA_CHECK(c.channels > 0 && c.kernel > 0, "short_conv: channels (", c.channels, ") and kernel (", c.kernel,
                ") must be positive");
  }

  // PyTorch's Conv1d default: weight and bias uniform in +-1/sqrt(fan_in), fan_in = K.
  static void init(const config& c, params& p, rng& r) {
    check(c);
    double bound = 1.0 / std::sqrt(double(c.kernel));
    fill_uniform(p.weight, r, -bound, bound);
    fill_uniform(p.bias, r, -bound, bound);
  }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y) {
    check(c);
    HYENA_CHECK(x.rank() == 3 && x.size(2) == c.channels && x.contiguous(), "short_conv: input must be contiguous (",
                "batch, seq, ", c.channels, "), got ", x.shape);
    check_same_shape(x, y, "short_conv: output vs input");
    B::short_conv_forward(ctx, x.size(0), x.size(1), c.channels, c.kernel, x.data, p.weight.data, p.bias.data, y.data);
    k.x = x;
  }

  static void backward(context& ctx, const config& c, const params& p, const cache& k, ctview dy, tview dx,
                       params& g) {
    check_same_shape(dy, k.x, "short_conv: output gradient vs input");
    if (!dx.empty()) check_same_shape(dx, k.x, "short_conv: input gradient vs input");
    B::short_conv_backward(ctx, k.x.size(0), k.x.size(1), c.channels, c.kernel, k.x.data, p.weight.data, dy.data,
                           dx.empty() ? static_cast<T*>(nullptr) : dx.data, g.weight.data, g.bias.data);
  }
};

}  // namespace hyena::nn
