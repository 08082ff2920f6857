// nn/implicit_filter.hpp: Hyena's implicit long filter (safari's HyenaFilter.filter).
//
// For a length L <= max_seq it produces h (channels, L), one filter per channel:
//   z      = pos[0:L]                   trainable positional features (max_seq, emb_dim),
//                                       initialised to [t_n, cos(f_k w_n), -sin(f_k w_n)]
//   a      = sin(freq * (z W0^T + b0))  then `inner` times a = sin(freq * (a Wi^T + bi))
//   k      = a Wout^T                   (L, channels), no bias
//   h[c,n] = k[n,c] exp(-|delta_c| t_n) delta_c = linspace(delta_first, delta_last, channels),
//                                       fixed (not trained); t_n = n / (max_seq - 1)
// One trainable freq vector (width) is shared by every sin layer, as in safari.
//
// It has no activation input, so its API is forward(ctx, cfg, params, cache, seq, h) and
// backward(ctx, cfg, params, cache, dh, grads) rather than the x -> y layer form.
#pragma once
#include <cmath>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "../tensor/transfer.hpp"
#include "linear.hpp"

namespace hyena::nn {

// The first s.numel() elements of v's storage seen with shape s (caches are sized for the
// largest (batch, seq) and reused for smaller ones).
template <class V>
V leading(const V& v, const shape& s, const char* what) {
  HYENA_CHECK(v.contiguous() && s.numel() <= v.numel(), what, ": cache holds ", v.numel(), " elements, ", s,
              " needs ", s.numel(), " (was it sized for a smaller batch or sequence?)");
  return V(v.data, s);
}

struct implicit_filter_config {
  index_t channels = 0;  // number of filters: convs() * hidden in a Hyena operator (nn/hyena.hpp)
  index_t emb_dim = 3;   // positional features, 2K + 1 for K bands
  index_t width = 64;    // FFN width (safari's filter order)
  index_t inner = 2;     // inner width -> width sin layers
  index_t max_seq = 0;   // rows of the positional table, the longest filter
  double sin_freq = 1.0;
  // Decay window: |delta| runs from ln(target)/fast_pct (fast) to ln(target)/slow_pct (slow).
  double fast_decay_pct = 0.3, slow_decay_pct = 1.5, target = 1e-2;

  double delta_first() const { return std::log(target) / fast_decay_pct; }
  double delta_last() const { return std::log(target) / slow_decay_pct; }
  double t_step() const { return max_seq > 1 ? 1.0 / double(max_seq - 1) : 0.0; }
  index_t bands() const { return (emb_dim - 1) / 2; }
  // The FFN's linears: emb_dim -> width, `inner` x (width -> width), width -> channels.
  linear_config mlp(index_t i) const {
    if (i == 0) return {emb_dim, width, true};
    if (i <= inner) return {width, width, true};
    return {width, channels, false};
  }
  void validate() const {
    HYENA_CHECK(channels > 0 && width > 0 && inner >= 0 && max_seq > 0, "implicit_filter: channels (", channels,
                "), width (", width, ") and max_seq (", max_seq, ") must be positive and inner (", inner, ") >= 0");
    HYENA_CHECK(emb_dim >= 3 && emb_dim % 2 == 1, "implicit_filter: emb_dim must be odd and >= 3, got ", emb_dim);
  }
};

template <class B, class T>
struct implicit_filter {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = implicit_filter_config;
  using lin = linear<B, T>;

  struct params {
    tview pos;                               // (max_seq, emb_dim)
    tview freq;                              // (width)
    std::vector<typename lin::params> mlp;   // inner + 2 linears
    template <class W>
    void visit(W&& w, const config& c) {
      w("pos", pos, {c.max_seq, c.emb_dim});
      w("freq", freq, {c.width});
      mlp.resize(c.inner + 2);
      auto m = w.child("mlp");
      for (index_t i = 0; i < c.inner + 2; ++i) mlp[i].visit(m.child(std::to_string(i)), c.mlp(i));
    }
  };

  struct cache {
    std::vector<typename lin::cache> mlp;  // input views of the linears
    std::vector<tview> pre, act;           // per sin layer: pre-activation and output (seq, width)
    tview k;                               // last linear's output (seq, channels)
    tview d_k, d_a, d_b;                   // backward scratch
    template <class W>
    void visit(W&& w, const config& c, index_t, index_t seq) {
      mlp.resize(c.inner + 2);
      pre.resize(c.inner + 1);
      act.resize(c.inner + 1);
      auto wp = w.child("pre"), wa = w.child("act");
      for (index_t i = 0; i <= c.inner; ++i) {
        wp(std::to_string(i), pre[i], {seq, c.width});
        wa(std::to_string(i), act[i], {seq, c.width});
      }
      w("k", k, {seq, c.channels});
      w("d_k", d_k, {seq, c.channels});
      w("d_a", d_a, {seq, c.width});
      w("d_b", d_b, {seq, c.width});
    }
  };

  static shape filter_shape(const config& c, index_t seq) { return {c.channels, seq}; }

  // Linears: PyTorch's nn.Linear default, weight and bias uniform in +-1/sqrt(fan_in) (what
  // safari's HyenaFilter gets at construction). It keeps h of order one where normal(0.02)
  // would shrink it ~100x through the stack and leave the D skip term to dominate.
  static void init(const config& c, params& p, rng& r) {
    c.validate();
    for (index_t i = 0; i < c.inner + 2; ++i) {
      auto lc = c.mlp(i);
      double bound = 1.0 / std::sqrt(double(lc.in));
      fill_uniform(p.mlp[i].weight, r, -bound, bound);
      if (lc.bias) fill_uniform(p.mlp[i].bias, r, -bound, bound);
    }
    fill_value(p.freq, T(c.sin_freq));
    // z_n = [t_n, Re exp(-i f_k w_n), Im exp(-i f_k w_n)], f_k = linspace(1e-4, K-1, K).
    // Built on the host, then copied to where the parameters live.
    const index_t K = c.bands(), cols = p.pos.size(1);
    std::vector<T> table(static_cast<std::size_t>(c.max_seq * cols));
    for (index_t n = 0; n < c.max_seq; ++n) {
      double w = 2 * std::numbers::pi * double(n) / double(c.max_seq);
      T* row = table.data() + n * cols;
      row[0] = T(double(n) * c.t_step());
      for (index_t j = 0; j < K; ++j) {
        double f = K > 1 ? 1e-4 + (double(K - 1) - 1e-4) * double(j) / double(K - 1) : 1e-4;
        row[1 + j] = T(std::cos(f * w));
        row[1 + K + j] = T(-std::sin(f * w));
      }
    }
    copy_from_host(p.pos, table.data());
  }

  // The checks of forward and infer: h (channels, seq) contiguous, 1 <= seq <= max_seq.
  static void check_call(const config& c, index_t seq, const tview& h) {
    c.validate();
    HYENA_CHECK(seq >= 1 && seq <= c.max_seq, "implicit_filter: length ", seq, " not in [1, max_seq = ", c.max_seq, "]");
    check_shape(h, filter_shape(c, seq), "implicit_filter: filter output");
    HYENA_CHECK(h.contiguous(), "implicit_filter: filter output must be contiguous");
  }

  // h: (channels, seq) contiguous, seq <= max_seq.
  static void forward(context& ctx, const config& c, const params& p, cache& k, index_t seq, tview h) {
    check_call(c, seq, h);
    const shape s_w{seq, c.width};
    ctview in = p.pos.slice(0, seq);
    for (index_t i = 0; i <= c.inner; ++i) {
      tview pre = leading(k.pre[i], s_w, "implicit_filter"), act = leading(k.act[i], s_w, "implicit_filter");
      lin::forward(ctx, c.mlp(i), p.mlp[i], k.mlp[i], in, pre);
      B::sin_forward(ctx, seq, c.width, p.freq.data, pre.data, act.data);
      in = act;
    }
    tview kk = leading(k.k, {seq, c.channels}, "implicit_filter");
    lin::forward(ctx, c.mlp(c.inner + 1), p.mlp[c.inner + 1], k.mlp[c.inner + 1], in, kk);
    B::decay_window_forward(ctx, seq, c.channels, c.t_step(), c.delta_first(), c.delta_last(), kk.data, h.data, seq);
  }

  // Forward without a backward to follow (inference): the same h, bit for bit, keeping one sin
  // layer's activations at a time (two (seq, width) buffers, each sin applied in place) instead
  // of every layer's pre-activation and output. At seq = 1M and width 64 that is 0.5 GB, not 1.5.
  struct infer_cache {
    tview a, b;  // (seq, width): the layers' activations, alternating
    tview k;     // (seq, channels): the last linear's output
    template <class W>
    void visit(W&& w, const config& c, index_t, index_t seq) {
      w("a", a, {seq, c.width});
      w("b", b, {seq, c.width});
      w("k", k, {seq, c.channels});
    }
  };

  static void infer(context& ctx, const config& c, const params& p, infer_cache& k, index_t seq, tview h) {
    check_call(c, seq, h);
    const shape s_w{seq, c.width};
    const tview act[2] = {leading(k.a, s_w, "implicit_filter"), leading(k.b, s_w, "implicit_filter")};
    typename lin::cache unused;  // a linear's cache only records its input, for a backward
    ctview in = p.pos.slice(0, seq);
    for (index_t i = 0; i <= c.inner; ++i) {
      const tview out = act[i % 2];
      lin::forward(ctx, c.mlp(i), p.mlp[i], unused, in, out);
      B::sin_forward(ctx, seq, c.width, p.freq.data, static_cast<const T*>(out.data), out.data);
      in = out;
    }
    tview kk = leading(k.k, {seq, c.channels}, "implicit_filter");
    lin::forward(ctx, c.mlp(c.inner + 1), p.mlp[c.inner + 1], unused, in, kk);
    B::decay_window_forward(ctx, seq, c.channels, c.t_step(), c.delta_first(), c.delta_last(), kk.data, h.data, seq);
  }

  // dh: (channels, seq); every parameter gradient accumulates.
  static void backward(context& ctx, const config& c, const params& p, const cache& k, ctview dh, params& g) {
    HYENA_CHECK(dh.rank() == 2 && dh.size(0) == c.channels && dh.contiguous(), "implicit_filter: filter gradient ",
                dh.shape, " must be contiguous (", c.channels, ", seq)");
    const index_t seq = dh.size(1);
    const shape s_w{seq, c.width};
    tview dk = leading(k.d_k, {seq, c.channels}, "implicit_filter");
    tview da = leading(k.d_a, s_w, "implicit_filter"), db = leading(k.d_b, s_w, "implicit_filter");
    B::decay_window_backward(ctx, seq, c.channels, c.t_step(), c.delta_first(), c.delta_last(), dh.data, seq, dk.data);
    lin::backward(ctx, c.mlp(c.inner + 1), p.mlp[c.inner + 1], k.mlp[c.inner + 1], dk, da, g.mlp[c.inner + 1]);
    for (index_t i = c.inner; i >= 0; --i) {
      // da: gradient of act[i] -> of pre[i] (in place), then through linear i.
      B::sin_backward(ctx, seq, c.width, p.freq.data, leading(k.pre[i], s_w, "implicit_filter").data, da.data,
                      da.data, g.freq.data);
      if (i > 0) {
        lin::backward(ctx, c.mlp(i), p.mlp[i], k.mlp[i], da, db, g.mlp[i]);
        std::swap(da, db);
      } else {
        lin::backward(ctx, c.mlp(0), p.mlp[0], k.mlp[0], da, tview{}, g.mlp[0]);
        // The positional table is a parameter: its gradient accumulates (rows 0..seq-1).
        B::gemm(ctx, false, false, seq, c.emb_dim, c.width, T(1), da.data, c.width, p.mlp[0].weight.data, c.emb_dim,
                T(1), g.pos.data, c.emb_dim);
      }
    }
  }
};

}  // namespace hyena::nn
