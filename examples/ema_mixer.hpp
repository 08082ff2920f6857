// ema_mixer.hpp: a new token mixer written against the layer contract (nn/layer.hpp):
// a causal exponential moving average per channel followed by a projection. Used by
// examples/custom_mixer.cpp and checked like any library layer by
// tests/examples/test_ema_mixer.cpp.
#pragma once
#include <hyena/hyena.hpp>

#include <cmath>

namespace example {
using namespace hyena;

// y_t = W (a ⊙ y_{t-1} + (1 - a) ⊙ x_t) with a per-channel decay a = sigmoid(logit).
struct ema_config {
  index_t hidden = 0;
  static ema_config from(const models::model_config& c) { return {c.hidden}; }
};

template <class B, class T>
struct ema_mixer {
  using config = ema_config;
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using proj = nn::linear<B, T>;

  struct params {
    tview logit;  // (hidden): decay per channel, before the sigmoid
    typename proj::params out;
    template <class W>
    void visit(W&& w, const config& c) {
      w("logit", logit, {c.hidden});
      out.visit(w.child("out"), proj_config(c));
    }
  };
  struct cache {
    ctview x;
    tview ema, d_ema;  // (batch, seq, hidden)
    typename proj::cache out;
    template <class W>
    void visit(W&& w, const config& c, index_t batch, index_t seq) {
      w("ema", ema, {batch, seq, c.hidden});
      w("d_ema", d_ema, {batch, seq, c.hidden});
    }
  };
  static typename proj::config proj_config(const config& c) { return {.in = c.hidden, .out = c.hidden}; }
  static shape input_shape(const config& c, index_t b, index_t s) { return {b, s, c.hidden}; }
  static shape output_shape(const config& c, index_t b, index_t s) { return {b, s, c.hidden}; }
  static void init(const config& c, params& p, rng& r) {
    fill_uniform(p.logit, r, 0.0, 3.0);
    proj::init(proj_config(c), p.out, r);
  }
  static T decay(T logit) { return T(1) / (T(1) + std::exp(-logit)); }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y) {
    const index_t batch = x.size(0), seq = x.size(1), d = c.hidden;
    for (index_t b = 0; b < batch; ++b)
      for (index_t ch = 0; ch < d; ++ch) {
        const T a = decay(p.logit.data[ch]);
        T state = 0;
        for (index_t t = 0; t < seq; ++t) {
          const index_t i = (b * seq + t) * d + ch;
          state = a * state + (T(1) - a) * x.data[i];
          k.ema.data[i] = state;
        }
      }
    k.x = x;
    proj::forward(ctx, proj_config(c), p.out, k.out, k.ema, y);
  }

  static void backward(context& ctx, const config& c, const params& p, cache& k, ctview dy, tview dx, params& g) {
    proj::backward(ctx, proj_config(c), p.out, k.out, dy, k.d_ema, g.out);
    const index_t batch = dy.size(0), seq = dy.size(1), d = c.hidden;
    for (index_t b = 0; b < batch; ++b)
      for (index_t ch = 0; ch < d; ++ch) {
        const T a = decay(p.logit.data[ch]);
        T carry = 0, da = 0;  // carry: d(loss)/d(state_t) flowing back in time
        for (index_t t = seq - 1; t >= 0; --t) {
          const index_t i = (b * seq + t) * d + ch;
          carry += k.d_ema.data[i];
          const T prev = t > 0 ? k.ema.data[i - d] : T(0);
          da += carry * (prev - k.x.data[i]);
          if (!dx.empty()) dx.data[i] = carry * (T(1) - a);
          carry *= a;
        }
        g.logit.data[ch] += da * a * (T(1) - a);
      }
  }
};

}  // namespace example
