#include <hyena/nn/layer_norm.hpp>

#include <cmath>

#include "../support/layer_check.hpp"

using namespace hyena;

TEST_CASE("layer_norm: gradients match central differences") {
  testing::check_layer_gradients<nn::layer_norm>({.dim = 7, .eps = 1e-5}, 2, 3);
  testing::check_layer_gradients<nn::layer_norm>({.dim = 20, .eps = 1e-2}, 1, 4);
}

TEST_CASE("layer_norm: cpu matches cpu_ref") {
  testing::check_layer_parity<nn::layer_norm>({.dim = 5}, 2, 3);      // narrower than a SIMD batch
  testing::check_layer_parity<nn::layer_norm>({.dim = 67}, 3, 11);
  testing::check_layer_parity<nn::layer_norm>({.dim = 1030}, 2, 5);   // long rows: blocked sums
}

TEST_CASE("layer_norm ops: threaded cpu matches cpu_ref on large inputs") {
  const index_t rows = 600, cols = 1030;
  rng r(5);
  tensor<float> x({rows, cols}), w({cols}), b({cols}), dy({rows, cols});
  fill_normal(x.v(), r, 3.0, 1.5);  // an offset mean exercises the centred variance
  fill_normal(w.v(), r);
  fill_normal(b.v(), r);
  fill_normal(dy.v(), r);
  struct out {
    tensor<float> y, mean, rstd, dx, dw, db;
  };
  auto run = [&](auto backend_tag, out& o) {
    using B = decltype(backend_tag);
    backend::host_context ctx(4);
    o.y = tensor<float>({rows, cols});
    o.mean = tensor<float>({rows});
    o.rstd = tensor<float>({rows});
    o.dx = tensor<float>({rows, cols});
    o.dw = tensor<float>({cols});
    o.db = tensor<float>({cols});
    fill_value(o.dw.v(), 0.5f);  // parameter grads accumulate
    fill_value(o.db.v(), -0.5f);
    B::layer_norm_forward(ctx, rows, cols, x.data(), w.data(), b.data(), 1e-5, o.y.data(), o.mean.data(), o.rstd.data());
    B::layer_norm_backward(ctx, rows, cols, x.data(), w.data(), o.mean.data(), o.rstd.data(), dy.data(), o.dx.data(),
                           o.dw.data(), o.db.data());
  };
  out ref, fast;
  run(backend::cpu_ref{}, ref);
  run(backend::cpu{}, fast);
  auto same = [](const tensor<float>& a, const tensor<float>& b, double rtol, double atol) {
    index_t bad = 0;
    for (index_t i = 0; i < a.numel(); ++i) bad += !testing::close(a.data()[i], b.data()[i], rtol, atol);
    return bad;
  };
  CHECK(same(fast.y, ref.y, 1e-4, 1e-5) == 0);
  CHECK(same(fast.mean, ref.mean, 1e-5, 1e-6) == 0);
  CHECK(same(fast.rstd, ref.rstd, 1e-5, 1e-6) == 0);
  CHECK(same(fast.dx, ref.dx, 1e-4, 1e-5) == 0);
  CHECK(same(fast.dw, ref.dw, 1e-5, 1e-4) == 0);
  CHECK(same(fast.db, ref.db, 1e-5, 1e-4) == 0);
}

TEST_CASE("layer_norm: known values and normalised statistics") {
  using L = nn::layer_norm<backend::cpu, float>;
  L::config c{.dim = 4, .eps = 1e-5};
  L::params p;
  arena<float> pa;
  pa.bind(p, c);
  rng r(0);
  L::init(c, p, r);
  CHECK(p.weight.data[0] == 1.0f);
  CHECK(p.bias.data[0] == 0.0f);
  L::cache k;
  arena<float> ka;
  ka.bind(k, c, 1, 2);
  auto x = make_tensor<float>({1, 2, 4}, {1, 2, 3, 4, -10, 0, 10, 20});
  tensor<float> y({1, 2, 4});
  backend::host_context ctx;
  L::forward(ctx, c, p, k, x.v(), y.v());
  // Row 0: mean 2.5, biased variance 1.25.
  const double rs = 1 / std::sqrt(1.25 + 1e-5);
  CHECK(y.data()[0] == doctest::Approx(-1.5 * rs));
  CHECK(y.data()[3] == doctest::Approx(1.5 * rs));
  CHECK(k.mean.data[0] == doctest::Approx(2.5));
  for (index_t row = 0; row < 2; ++row) {
    double m = 0, v = 0;
    for (index_t i = 0; i < 4; ++i) m += y.data()[row * 4 + i] / 4.0;
    for (index_t i = 0; i < 4; ++i) v += (y.data()[row * 4 + i] - m) * (y.data()[row * 4 + i] - m) / 4.0;
    CHECK(m == doctest::Approx(0).epsilon(1e-6));
    CHECK(v == doctest::Approx(1).epsilon(1e-4));
  }
  // The affine part: weight 2, bias 3 gives mean 3, variance 4.
  fill_value(p.weight, 2.0f);
  fill_value(p.bias, 3.0f);
  L::forward(ctx, c, p, k, x.v(), y.v());
  double m = 0;
  for (index_t i = 0; i < 4; ++i) m += y.data()[i] / 4.0;
  CHECK(m == doctest::Approx(3));
  CHECK(y.data()[3] == doctest::Approx(3 + 2 * 1.5 * rs));
}

TEST_CASE("layer_norm: an empty dx skips it and leaves parameter grads unchanged") {
  using L = nn::layer_norm<backend::cpu, double>;
  L::config c{.dim = 6};
  L::params p, g1, g2;
  arena<double> pa, ga1, ga2, ka;
  pa.bind(p, c);
  ga1.bind(g1, c);
  ga2.bind(g2, c);
  L::cache k;
  ka.bind(k, c, 2, 3);
  rng r(3);
  fill_normal(p.weight, r);
  fill_normal(p.bias, r);
  tensor<double> x({2, 3, 6}), y({2, 3, 6}), dy({2, 3, 6}), dx({2, 3, 6});
  fill_normal(x.v(), r);
  fill_normal(dy.v(), r);
  backend::host_context ctx;
  L::forward(ctx, c, p, k, x.v(), y.v());
  L::backward(ctx, c, p, k, dy.v(), dx.v(), g1);
  L::backward(ctx, c, p, k, dy.v(), view<double>{}, g2);
  for (index_t i = 0; i < 6; ++i) {
    CHECK(g1.weight.data[i] == doctest::Approx(g2.weight.data[i]));
    CHECK(g1.bias.data[i] == doctest::Approx(g2.bias.data[i]));
  }
}

TEST_CASE("layer_norm: config from the model config") {
  model_config m;
  m.hidden = 48;
  m.norm_eps = 1e-6;
  auto c = nn::layer_norm_config::from(m);
  CHECK(c.dim == 48);
  CHECK(c.eps == 1e-6);
}

TEST_CASE("layer_norm: bad shapes throw hyena::error") {
  using L = nn::layer_norm<backend::cpu, float>;
  L::config c{.dim = 4};
  L::params p;
  arena<float> pa, ka;
  pa.bind(p, c);
  L::cache k;
  ka.bind(k, c, 1, 2);
  backend::host_context ctx;
  tensor<float> x5({1, 2, 5}), y5({1, 2, 5}), x4({1, 2, 4}), y3({1, 3, 4}), big({1, 3, 4}), ybig({1, 3, 4});
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x5.v(), y5.v()), hyena::error);   // wrong width
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x4.v(), y3.v()), hyena::error);   // output shape differs
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, big.v(), ybig.v()), hyena::error);  // more rows than the cache
  L::config bad{.dim = 4, .eps = 0};
  CHECK_THROWS_AS(L::forward(ctx, bad, p, k, x4.v(), x4.v()), hyena::error);
}
