#include <hyena/nn/rms_norm.hpp>

#include <cmath>

#include "../support/layer_check.hpp"

using namespace hyena;

TEST_CASE("rms_norm: gradients match central differences") {
  testing::check_layer_gradients<nn::rms_norm>({.dim = 7, .eps = 1e-5}, 2, 3);
  testing::check_layer_gradients<nn::rms_norm>({.dim = 16, .eps = 1e-2}, 1, 3);
}

TEST_CASE("rms_norm: cpu matches cpu_ref") {
  testing::check_layer_parity<nn::rms_norm>({.dim = 3}, 2, 3);
  testing::check_layer_parity<nn::rms_norm>({.dim = 67}, 3, 11);
  testing::check_layer_parity<nn::rms_norm>({.dim = 1030}, 2, 5);
}

TEST_CASE("rms_norm ops: threaded cpu matches cpu_ref on large inputs") {
  const index_t rows = 600, cols = 1030;
  rng r(6);
  tensor<float> x({rows, cols}), w({cols}), dy({rows, cols});
  fill_normal(x.v(), r, 2.0, 1.0);
  fill_normal(w.v(), r);
  fill_normal(dy.v(), r);
  struct out {
    tensor<float> y, rstd, dx, dw;
  };
  auto run = [&](auto backend_tag, out& o) {
    using B = decltype(backend_tag);
    backend::host_context ctx(4);
    o.y = tensor<float>({rows, cols});
    o.rstd = tensor<float>({rows});
    o.dx = tensor<float>({rows, cols});
    o.dw = tensor<float>({cols});
    fill_value(o.dw.v(), 0.25f);
    B::rms_norm_forward(ctx, rows, cols, x.data(), w.data(), 1e-5, o.y.data(), o.rstd.data());
    B::rms_norm_backward(ctx, rows, cols, x.data(), w.data(), o.rstd.data(), dy.data(), o.dx.data(), o.dw.data());
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
  CHECK(same(fast.rstd, ref.rstd, 1e-5, 1e-6) == 0);
  CHECK(same(fast.dx, ref.dx, 1e-4, 1e-5) == 0);
  CHECK(same(fast.dw, ref.dw, 1e-5, 1e-4) == 0);
}

TEST_CASE("rms_norm: known values (Llama's formula)") {
  using L = nn::rms_norm<backend::cpu, float>;
  L::config c{.dim = 4, .eps = 1e-6};
  L::params p;
  arena<float> pa, ka;
  pa.bind(p, c);
  rng r(0);
  L::init(c, p, r);
  CHECK(p.weight.data[2] == 1.0f);
  p.weight.data[3] = 2.0f;
  L::cache k;
  ka.bind(k, c, 1, 1);
  auto x = make_tensor<float>({1, 1, 4}, {1, 2, 3, 4});
  tensor<float> y({1, 1, 4});
  backend::host_context ctx;
  L::forward(ctx, c, p, k, x.v(), y.v());
  const double rs = 1 / std::sqrt(30.0 / 4 + 1e-6);  // mean of squares 7.5, no centring
  CHECK(y.data()[0] == doctest::Approx(1 * rs));
  CHECK(y.data()[2] == doctest::Approx(3 * rs));
  CHECK(y.data()[3] == doctest::Approx(2 * 4 * rs));
  CHECK(k.rstd.data[0] == doctest::Approx(rs));
}

TEST_CASE("rms_norm: config from the model config") {
  model_config m;
  m.hidden = 24;
  m.norm_eps = 1e-6;
  auto c = nn::rms_norm_config::from(m);
  CHECK(c.dim == 24);
  CHECK(c.eps == 1e-6);
}

TEST_CASE("rms_norm: bad shapes throw hyena::error") {
  using L = nn::rms_norm<backend::cpu, float>;
  L::config c{.dim = 4};
  L::params p;
  arena<float> pa, ka;
  pa.bind(p, c);
  L::cache k;
  ka.bind(k, c, 1, 2);
  backend::host_context ctx;
  tensor<float> x5({1, 2, 5}), y5({1, 2, 5}), x4({1, 2, 4}), y4({2, 1, 4});
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x5.v(), y5.v()), hyena::error);
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x4.v(), y4.v()), hyena::error);
  L::forward(ctx, c, p, k, x4.v(), x4.v());
  tensor<float> dy3({1, 3, 4}), dx3({1, 3, 4});
  L::params g;
  arena<float> ga;
  ga.bind(g, c);
  CHECK_THROWS_AS(L::backward(ctx, c, p, k, dy3.v(), dx3.v(), g), hyena::error);  // rows differ from forward
}
