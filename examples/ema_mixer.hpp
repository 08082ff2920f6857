// ema_mixer.hpp: a new token mixer written against the layer contract (nn/layer.hpp):
// a causal exponential moving average per channel followed by a projection, with one
// hyperparameter of its own (nn/mixer.hpp) that checkpoints carry. Used by
// examples/custom_mixer.cpp and examples/custom_cli/ (a `hyena` CLI that loads it), and
// checked like any library layer by tests/examples/test_ema_mixer.cpp.
#pragma once
#include <hyena/hyena.hpp>

#include <cmath>

namespace example {
using namespace hyena;

// The mixer's own hyperparameter (nn/mixer.hpp): saved in checkpoints under "mixer" and read
// back before the model is built, so a model loads with the value it was trained with.
struct ema_hparams {
  double min_decay = 0.0;  // every channel keeps at least this much of its past (a >= min_decay)

  template <class Self, class Fn>
  static void visit_fields(Self& h, Fn&& fn) {
    fn("min_decay", h.min_decay);
  }
  void validate() const {
    HYENA_CHECK(min_decay >= 0 && min_decay < 1, "ema mixer: min_decay must be in [0, 1), got ", min_decay);
  }
};

// y_t = W (a ⊙ y_{t-1} + (1 - a) ⊙ x_t) with a per-channel decay
// a = min_decay + (1 - min_decay) sigmoid(logit).
struct ema_config {
  index_t hidden = 0;
  double min_decay = 0.0;
  static ema_config from(const models::model_config& c, const ema_hparams& h) { return {c.hidden, h.min_decay}; }
};

template <class B, class T>
struct ema_mixer {
  using config = ema_config;
  using hparams = ema_hparams;
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
  static T sigmoid(T v) { return T(1) / (T(1) + std::exp(-v)); }
  static T decay(const config& c, T logit) { return T(c.min_decay) + T(1 - c.min_decay) * sigmoid(logit); }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y) {
    const index_t batch = x.size(0), seq = x.size(1), d = c.hidden;
    for (index_t b = 0; b < batch; ++b)
      for (index_t ch = 0; ch < d; ++ch) {
        const T a = decay(c, p.logit.data[ch]);
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
        const T a = decay(c, p.logit.data[ch]);
        T carry = 0, da = 0;  // carry: d(loss)/d(state_t) flowing back in time
        for (index_t t = seq - 1; t >= 0; --t) {
          const index_t i = (b * seq + t) * d + ch;
          carry += k.d_ema.data[i];
          const T prev = t > 0 ? k.ema.data[i - d] : T(0);
          da += carry * (prev - k.x.data[i]);
          if (!dx.empty()) dx.data[i] = carry * (T(1) - a);
          carry *= a;
        }
        const T s = sigmoid(p.logit.data[ch]);
        g.logit.data[ch] += da * T(1 - c.min_decay) * s * (T(1) - s);
      }
  }
};

}  // namespace example
