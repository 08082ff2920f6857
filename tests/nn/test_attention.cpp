#include <hyena/nn/attention.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "../support/fixture.hpp"
#include "../support/layer_check.hpp"

using namespace hyena;

namespace {

nn::attention_config make(index_t hidden, index_t heads, index_t kv_heads, double pct, bool bias) {
  return {.hidden = hidden, .heads = heads, .kv_heads = kv_heads, .rotary_pct = pct, .bias = bias};
}

// A layer with random parameters and its buffers, on backend B.
template <class B, class T>
struct rig {
  using L = nn::attention<B, T>;
  nn::attention_config cfg;
  index_t batch, seq;
  backend::host_context ctx;
  typename L::params p, g;
  typename L::cache k;
  arena<T> pa, ga, ka;
  tensor<T> x, y;
  rig(const nn::attention_config& c, index_t b, index_t s, std::uint64_t seed, double std = 0.3)
      : cfg(c), batch(b), seq(s), x(L::input_shape(c, b, s)), y(L::output_shape(c, b, s)) {
    pa.bind(p, cfg);
    ga.bind(g, cfg);
    ka.bind(k, cfg, batch, seq);
    rng r(seed);
    auto flat = pa.flat();
    fill_normal(flat, r, std);
    fill_normal(x.v(), r);
  }
  void forward() { L::forward(ctx, cfg, p, k, x.v(), y.v()); }
};

}  // namespace

TEST_CASE("attention: gradients match central differences") {
  SUBCASE("multi-head, full rotary, bias") {
    testing::check_layer_gradients<nn::attention>(make(8, 2, 2, 1.0, true), 2, 5);
  }
  SUBCASE("GQA 4/2, rotary 0.25, bias") {
    testing::check_layer_gradients<nn::attention>(make(32, 4, 2, 0.25, true), 2, 4);
  }
  SUBCASE("GQA 6/2 (shared kv stride), full rotary, no bias") {
    testing::check_layer_gradients<nn::attention>(make(24, 6, 2, 1.0, false), 2, 5);
  }
  SUBCASE("multi-query 4/1, rotary 0.25, no bias") {
    testing::check_layer_gradients<nn::attention>(make(32, 4, 1, 0.25, false), 1, 6);
  }
}

TEST_CASE("attention: cpu matches cpu_ref") {
  SUBCASE("GQA 8/2, rotary 0.25, bias") {
    testing::check_layer_parity<nn::attention>(make(64, 8, 2, 0.25, true), 2, 19);
  }
  SUBCASE("multi-head, full rotary, no bias") {
    testing::check_layer_parity<nn::attention>(make(64, 4, 4, 1.0, false), 3, 17);
  }
  SUBCASE("GQA 4/2, rotary 1.0, bias") { testing::check_layer_parity<nn::attention>(make(32, 4, 2, 1.0, true), 2, 33); }
  SUBCASE("multi-query, no rotary") { testing::check_layer_parity<nn::attention>(make(32, 4, 1, 0.0, true), 2, 9); }
}

TEST_CASE("attention: causal (changing position t changes no output before t)") {
  auto check = [](auto tag, double tol) {
    using R = rig<decltype(tag), double>;
    R a(make(24, 6, 2, 0.5, true), 2, 7, 3);
    a.forward();
    std::vector<double> before(a.y.data(), a.y.data() + a.y.numel());
    const index_t t = 4, H = 24;
    for (index_t b = 0; b < 2; ++b)
      for (index_t d = 0; d < H; ++d) a.x.v()(b, t, d) += 0.5 + 0.1 * d;
    a.forward();
    for (index_t b = 0; b < 2; ++b)
      for (index_t s = 0; s < 7; ++s) {
        double diff = 0;
        for (index_t d = 0; d < H; ++d)
          diff = std::max(diff, std::abs(a.y.v()(b, s, d) - before[(b * 7 + s) * H + d]));
        INFO("batch ", b, " position ", s, " max change ", diff);
        if (s < t) CHECK(diff <= tol);
        else CHECK(diff > 1e-3);
      }
  };
  check(backend::cpu_ref{}, 0.0);
  check(backend::cpu{}, 1e-12);
}

TEST_CASE("attention: a single position attends only to itself, so y = out(v)") {
  auto check = [](auto tag) {
    using R = rig<decltype(tag), double>;
    const index_t H = 16, heads = 4, kv = 2, hd = 4, batch = 3;
    R a(make(H, heads, kv, 1.0, true), batch, 1, 7);
    a.forward();
    const index_t v0 = (heads + kv) * hd;  // first v row of the qkv weight
    for (index_t b = 0; b < batch; ++b) {
      std::vector<double> o(H);
      for (index_t h = 0; h < heads; ++h)
        for (index_t d = 0; d < hd; ++d) {
          index_t row = v0 + (h / (heads / kv)) * hd + d;
          double acc = a.p.qkv.bias(row);
          for (index_t i = 0; i < H; ++i) acc += a.p.qkv.weight(row, i) * a.x.v()(b, 0, i);
          o[h * hd + d] = acc;
        }
      for (index_t j = 0; j < H; ++j) {
        double acc = a.p.out.bias(j);
        for (index_t i = 0; i < H; ++i) acc += a.p.out.weight(j, i) * o[i];
        CHECK(a.y.v()(b, 0, j) == doctest::Approx(acc).epsilon(1e-12));
      }
    }
  };
  check(backend::cpu_ref{});
  check(backend::cpu{});
}

TEST_CASE("attention: parameter grads accumulate, and an empty dx is skipped") {
  using R = rig<backend::cpu, double>;
  using L = nn::attention<backend::cpu, double>;
  R a(make(16, 4, 2, 0.5, true), 2, 6, 5);
  a.forward();
  tensor<double> dy(a.y.shape()), dx(a.x.shape());
  rng r(8);
  fill_normal(dy.v(), r);
  L::backward(a.ctx, a.cfg, a.p, a.k, dy.v(), dx.v(), a.g);
  std::vector<double> once(a.ga.flat().data, a.ga.flat().data + a.ga.size());
  L::backward(a.ctx, a.cfg, a.p, a.k, dy.v(), view<double>(), a.g);
  double worst = 0, norm = 0;
  for (index_t i = 0; i < a.ga.size(); ++i) {
    worst = std::max(worst, std::abs(a.ga.flat().data[i] - 2 * once[i]));
    norm = std::max(norm, std::abs(once[i]));
  }
  CHECK(norm > 0);
  CHECK(worst <= 1e-12 * norm);
}

TEST_CASE("attention: a cache bound for a longer sequence can be reused (inference)") {
  using R = rig<backend::cpu, float>;
  using L = nn::attention<backend::cpu, float>;
  auto c = make(32, 4, 2, 0.5, true);
  R small(c, 2, 5, 11), big(c, 2, 12, 11);
  std::copy(small.pa.flat().data, small.pa.flat().data + small.pa.size(), big.pa.flat().data);
  small.forward();
  tensor<float> y(small.y.shape());
  L::forward(big.ctx, c, big.p, big.k, small.x.v(), y.v());
  for (index_t i = 0; i < y.numel(); ++i) CHECK(y.data()[i] == doctest::Approx(small.y.data()[i]).epsilon(1e-6));
  R tiny(c, 1, 2, 1);  // and one bound too small throws
  CHECK_THROWS_AS(L::forward(tiny.ctx, c, tiny.p, tiny.k, small.x.v(), y.v()), hyena::error);
}

TEST_CASE("attention: matches the PyTorch golden fixture") {
  auto f = testing::fixture::load("attention.json");
  auto check = [&](auto tag) {
    using B = decltype(tag);
    using L = nn::attention<B, float>;
    nn::attention_config c{.hidden = f.meta["hidden"].get<index_t>(), .heads = f.meta["heads"].get<index_t>(),
                           .kv_heads = f.meta["kv_heads"].get<index_t>(), .rotary_pct = f.meta["rotary_pct"].get<double>(),
                           .rotary_base = f.meta["rotary_base"].get<double>(), .bias = f.meta["bias"].get<bool>()};
    const index_t batch = f.meta["batch"].get<index_t>(), seq = f.meta["seq"].get<index_t>();
    typename L::params p, g;
    typename L::cache k;
    arena<float> pa, ga, ka;
    pa.bind(p, c);
    ga.bind(g, c);
    ka.bind(k, c, batch, seq);
    index_t named = 0;
    for_each_tensor<float>(p, [&](const std::string& n, view<float>& v, const shape&) {
      f.copy_to(n, v);
      ++named;
    }, c);
    CHECK(named == 4);
    tensor<float> x(L::input_shape(c, batch, seq)), y(L::output_shape(c, batch, seq)), r(y.shape()), dx(x.shape());
    f.copy_to("x", x.v());
    f.copy_to("r", r.v());
    backend::host_context ctx;
    L::forward(ctx, c, p, k, x.v(), y.v());
    L::backward(ctx, c, p, k, r.v(), dx.v(), g);
    INFO("backend ", B::name);
    CHECK(testing::relative_error(y.data(), f.values<double>("y")) <= 1e-5);
    CHECK(testing::relative_error(dx.data(), f.values<double>("dx")) <= 1e-5);
    for_each_tensor<float>(g, [&](const std::string& n, view<float>& v, const shape&) {
      INFO("gradient of ", n);
      CHECK(testing::relative_error(v.data, f.values<double>("grad." + n)) <= 1e-5);
    }, c);
  };
  check(backend::cpu_ref{});
  check(backend::cpu{});
}

TEST_CASE("attention: config from model_config") {
  model_config m;
  m.hidden = 48, m.heads = 6, m.kv_heads = 3, m.rotary_pct = 0.25, m.rotary_base = 500, m.attention_bias = false;
  auto c = nn::attention_config::from(m);
  CHECK(c.hidden == 48);
  CHECK(c.heads == 6);
  CHECK(c.kv_heads == 3);
  CHECK(c.rotary_base == 500);
  CHECK(!c.bias);
  CHECK(c.head_dim() == 8);
  CHECK(c.rot_dims() == 2);
  CHECK(c.qkv_dim() == (6 + 2 * 3) * 8);
}

TEST_CASE("attention: bad configs and shapes throw hyena::error") {
  using L = nn::attention<backend::cpu, float>;
  L::params p;
  arena<float> a;
  CHECK_THROWS_AS(a.bind(p, make(10, 4, 4, 1.0, true)), hyena::error);  // hidden % heads
  CHECK_THROWS_AS(a.bind(p, make(12, 4, 3, 1.0, true)), hyena::error);  // heads % kv_heads
  CHECK_THROWS_AS(a.bind(p, make(12, 4, 0, 1.0, true)), hyena::error);
  CHECK_THROWS_AS(a.bind(p, make(16, 4, 2, 1.5, true)), hyena::error);  // rotary_pct
  rig<backend::cpu, float> ok(make(16, 4, 2, 1.0, true), 1, 3, 1);
  tensor<float> x({1, 3, 12}), y({1, 3, 12});
  CHECK_THROWS_AS(L::forward(ok.ctx, ok.cfg, ok.p, ok.k, x.v(), y.v()), hyena::error);  // wrong width
  tensor<float> y2({1, 4, 16});
  CHECK_THROWS_AS(L::forward(ok.ctx, ok.cfg, ok.p, ok.k, ok.x.v(), y2.v()), hyena::error);  // output shape
}
