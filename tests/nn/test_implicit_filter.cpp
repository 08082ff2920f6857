#include <hyena/nn/implicit_filter.hpp>

#include <cmath>
#include <numbers>

#include "../support/layer_check.hpp"

using namespace hyena;

namespace {

// The filter seen as a layer with an empty input and output h (channels, seq), so the
// shared gradient and parity checks apply.
template <class B, class T>
struct filter_layer {
  using F = nn::implicit_filter<B, T>;
  using config = typename F::config;
  using params = typename F::params;
  using cache = typename F::cache;
  using tview = typename F::tview;
  using ctview = typename F::ctview;
  static shape input_shape(const config&, index_t, index_t) { return {0}; }
  static shape output_shape(const config& c, index_t, index_t seq) { return F::filter_shape(c, seq); }
  static void init(const config& c, params& p, rng& r) { F::init(c, p, r); }
  static void forward(typename B::context& ctx, const config& c, const params& p, cache& k, ctview, tview y) {
    F::forward(ctx, c, p, k, y.size(1), y);
  }
  static void backward(typename B::context& ctx, const config& c, const params& p, const cache& k, ctview dy, tview,
                       params& g) {
    F::backward(ctx, c, p, k, dy, g);
  }
};

nn::implicit_filter_config small(index_t inner = 1) {
  return {.channels = 6, .emb_dim = 5, .width = 8, .inner = inner, .max_seq = 10, .sin_freq = 1.0};
}

}  // namespace

TEST_CASE("implicit_filter: gradients (pos, freq, every linear) match central differences") {
  testing::check_layer_gradients<filter_layer>(small(1), 1, 10);
  testing::check_layer_gradients<filter_layer>(small(2), 1, 7);  // shorter than max_seq
  testing::check_layer_gradients<filter_layer>(small(0), 1, 4);
}

TEST_CASE("implicit_filter: cpu matches cpu_ref") {
  auto c = small(2);
  c.channels = 24;
  c.width = 16;
  c.emb_dim = 9;
  c.max_seq = 80;
  testing::check_layer_parity<filter_layer>(c, 1, 80);
  testing::check_layer_parity<filter_layer>(c, 1, 33);
}

TEST_CASE("implicit_filter: init and an independent evaluation in double") {
  using F = nn::implicit_filter<backend::cpu_ref, double>;
  auto c = small(1);
  F::params p;
  F::cache k;
  arena<double> pa, ka;
  pa.bind(p, c);
  ka.bind(k, c, 1, c.max_seq);
  rng r(5);
  F::init(c, p, r);
  const index_t S = c.max_seq, K = 2;  // emb_dim 5: two bands, f = [1e-4, 1]
  for (index_t n = 0; n < S; ++n) {
    double w = 2 * std::numbers::pi * n / S;
    CHECK(p.pos(n, 0) == doctest::Approx(double(n) / (S - 1)));
    CHECK(p.pos(n, 1) == doctest::Approx(std::cos(1e-4 * w)));
    CHECK(p.pos(n, 2) == doctest::Approx(std::cos(1.0 * w)));
    CHECK(p.pos(n, 1 + K) == doctest::Approx(-std::sin(1e-4 * w)));
    CHECK(p.pos(n, 2 + K) == doctest::Approx(-std::sin(1.0 * w)));
  }
  for (index_t i = 0; i < c.width; ++i) CHECK(p.freq(i) == 1.0);
  for (index_t i = 0; i < c.width; ++i) p.freq(i) = 0.5 + 0.1 * i;  // distinct per column

  tensor<double> h({c.channels, S});
  backend::host_context ctx;
  F::forward(ctx, c, p, k, S, h.v());
  // Direct evaluation of the formula, one step at a time.
  auto layer = [&](const std::vector<double>& in, const F::lin::params& lp, bool bias, bool act) {
    index_t out = lp.weight.size(0), inn = lp.weight.size(1);
    std::vector<double> y(out);
    for (index_t o = 0; o < out; ++o) {
      double s = bias ? lp.bias(o) : 0.0;
      for (index_t i = 0; i < inn; ++i) s += lp.weight(o, i) * in[i];
      y[o] = act ? std::sin(p.freq(o) * s) : s;
    }
    return y;
  };
  for (index_t n = 0; n < S; ++n) {
    std::vector<double> z(c.emb_dim);
    for (index_t e = 0; e < c.emb_dim; ++e) z[e] = p.pos(n, e);
    auto a = layer(z, p.mlp[0], true, true);
    a = layer(a, p.mlp[1], true, true);
    auto kk = layer(a, p.mlp[2], false, false);
    for (index_t ch = 0; ch < c.channels; ++ch) {
      double delta = std::log(1e-2) / 0.3 + (std::log(1e-2) / 1.5 - std::log(1e-2) / 0.3) * ch / (c.channels - 1);
      double t = double(n) / (S - 1);
      CHECK(h.v()(ch, n) == doctest::Approx(kk[ch] * std::exp(-std::abs(delta) * t)).epsilon(1e-12));
    }
  }
}

TEST_CASE("implicit_filter: a shorter filter is the head of the longer one") {
  using F = nn::implicit_filter<backend::cpu, float>;
  auto c = small(2);
  F::params p;
  F::cache k;
  arena<float> pa, ka;
  pa.bind(p, c);
  ka.bind(k, c, 1, c.max_seq);
  rng r(6);
  F::init(c, p, r);
  backend::host_context ctx;
  tensor<float> full({c.channels, c.max_seq}), part({c.channels, 4});
  F::forward(ctx, c, p, k, c.max_seq, full.v());
  F::forward(ctx, c, p, k, 4, part.v());
  for (index_t ch = 0; ch < c.channels; ++ch)
    for (index_t n = 0; n < 4; ++n) CHECK(part.v()(ch, n) == doctest::Approx(full.v()(ch, n)).epsilon(1e-6));
}

TEST_CASE("implicit_filter: bad configs and lengths throw hyena::error") {
  using F = nn::implicit_filter<backend::cpu, float>;
  auto c = small(1);
  F::params p;
  F::cache k;
  arena<float> pa, ka;
  pa.bind(p, c);
  ka.bind(k, c, 1, c.max_seq);
  backend::host_context ctx;
  tensor<float> too_long({c.channels, c.max_seq + 1}), wrong({c.channels + 1, 4});
  CHECK_THROWS_AS(F::forward(ctx, c, p, k, c.max_seq + 1, too_long.v()), hyena::error);
  CHECK_THROWS_AS(F::forward(ctx, c, p, k, 4, wrong.v()), hyena::error);
  auto even = c;
  even.emb_dim = 4;
  rng r(1);
  CHECK_THROWS_AS(F::init(even, p, r), hyena::error);
}
