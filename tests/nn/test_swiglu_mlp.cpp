#include <hyena/nn/swiglu_mlp.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "../support/layer_check.hpp"

using namespace hyena;

TEST_CASE("swiglu_mlp: gradients match central differences") {
  testing::check_layer_gradients<nn::swiglu_mlp>({.hidden = 5, .intermediate = 7}, 2, 3);
  testing::check_layer_gradients<nn::swiglu_mlp>({.hidden = 5, .intermediate = 7, .bias = true}, 2, 3);
}

TEST_CASE("swiglu_mlp: cpu matches cpu_ref") {
  testing::check_layer_parity<nn::swiglu_mlp>({.hidden = 33, .intermediate = 70}, 2, 9);
  testing::check_layer_parity<nn::swiglu_mlp>({.hidden = 4, .intermediate = 3}, 1, 2);
  testing::check_layer_parity<nn::swiglu_mlp>({.hidden = 33, .intermediate = 70, .bias = true}, 2, 9);
}

TEST_CASE("swiglu ops: known values, both backends, threaded") {
  auto check_backend = [](auto backend_tag) {
    using B = decltype(backend_tag);
    backend::host_context ctx(3);
    const index_t rows = 300, width = 50;
    std::vector<float> gu(rows * 2 * width), y(rows * width), dy(rows * width, 1.0f), dgu(rows * 2 * width);
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < width; ++c) {
        gu[r * 2 * width + c] = float(c % 3) - 1.0f;     // gate: -1, 0, 1
        gu[r * 2 * width + width + c] = 2.0f;           // up
      }
    B::swiglu_forward(ctx, rows, width, gu.data(), y.data());
    B::swiglu_backward(ctx, rows, width, gu.data(), dy.data(), dgu.data());
    const double s1 = 0.7310585786300049;  // sigmoid(1)
    for (index_t r : {index_t(0), rows - 1}) {
      CHECK(y[r * width + 0] == doctest::Approx(-2 * (1 - s1)).epsilon(1e-6));  // silu(-1) * 2
      CHECK(y[r * width + 1] == 0.0f);
      CHECK(y[r * width + 2] == doctest::Approx(2 * s1).epsilon(1e-6));         // silu(1) * 2
      // d/dgate = up * s (1 + g (1 - s)); d/dup = silu(g).
      CHECK(dgu[r * 2 * width + 2] == doctest::Approx(2 * s1 * (1 + (1 - s1))).epsilon(1e-6));
      CHECK(dgu[r * 2 * width + 1] == doctest::Approx(2 * 0.5).epsilon(1e-6));
      CHECK(dgu[r * 2 * width + width + 2] == doctest::Approx(s1).epsilon(1e-6));
      CHECK(dgu[r * 2 * width + width + 0] == doctest::Approx(-(1 - s1)).epsilon(1e-6));
    }
  };
  check_backend(backend::cpu_ref{});
  check_backend(backend::cpu{});
}

TEST_CASE("swiglu_mlp: parameter names and PyTorch shapes") {
  model_config m;
  m.hidden = 8;
  m.intermediate = 24;
  m.mlp_bias = false;  // Llama
  std::map<std::string, shape> got;
  nn::swiglu_mlp<backend::cpu, float>::params p;
  for_each_tensor<float>(p, [&](const std::string& n, view<float>&, const shape& s) { got[n] = s; },
                         nn::swiglu_mlp_config::from(m));
  CHECK(got.size() == 3);
  CHECK(got["gate.weight"] == shape{24, 8});
  CHECK(got["up.weight"] == shape{24, 8});
  CHECK(got["down.weight"] == shape{8, 24});
  m.mlp_bias = true;  // HF LlamaConfig.mlp_bias: gate_proj.bias, up_proj.bias, down_proj.bias
  got.clear();
  for_each_tensor<float>(p, [&](const std::string& n, view<float>&, const shape& s) { got[n] = s; },
                         nn::swiglu_mlp_config::from(m));
  CHECK(got.size() == 6);
  CHECK(got["gate.bias"] == shape{24});
  CHECK(got["up.bias"] == shape{24});
  CHECK(got["down.bias"] == shape{8});
}

TEST_CASE("swiglu_mlp: matches a plain-loop implementation, with and without biases") {
  using L = nn::swiglu_mlp<backend::cpu, double>;
  for (bool bias : {false, true}) {
    CAPTURE(bias);
    L::config c{.hidden = 3, .intermediate = 4, .bias = bias};
    L::params p;
    L::cache k;
    arena<double> pa, ka;
    pa.bind(p, c);
    ka.bind(k, c, 2, 1);
    rng r(9);
    for (auto* v : {&p.gate.weight, &p.up.weight, &p.down.weight}) fill_normal(*v, r, 0.8);
    if (bias)
      for (auto* v : {&p.gate.bias, &p.up.bias, &p.down.bias}) fill_normal(*v, r, 0.8);
    auto b = [&](const view<double>& v, index_t i) { return bias ? v.data[i] : 0.0; };
    tensor<double> x({2, 1, 3}), y({2, 1, 3});
    fill_normal(x.v(), r);
    backend::host_context ctx;
    L::forward(ctx, c, p, k, x.v(), y.v());
    for (index_t t = 0; t < 2; ++t) {
      std::vector<double> h(4);
      for (index_t j = 0; j < 4; ++j) {
        double g = b(p.gate.bias, j), u = b(p.up.bias, j);
        for (index_t i = 0; i < 3; ++i) {
          g += p.gate.weight(j, i) * x.data()[t * 3 + i];
          u += p.up.weight(j, i) * x.data()[t * 3 + i];
        }
        h[j] = g / (1 + std::exp(-g)) * u;
      }
      for (index_t o = 0; o < 3; ++o) {
        double want = b(p.down.bias, o);
        for (index_t j = 0; j < 4; ++j) want += p.down.weight(o, j) * h[j];
        CHECK(y.data()[t * 3 + o] == doctest::Approx(want).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("swiglu_mlp: bad shapes throw hyena::error") {
  using L = nn::swiglu_mlp<backend::cpu, float>;
  L::config c{.hidden = 4, .intermediate = 8};
  L::params p;
  L::cache k;
  arena<float> pa, ka;
  pa.bind(p, c);
  ka.bind(k, c, 1, 2);
  backend::host_context ctx;
  tensor<float> x5({1, 2, 5}), y5({1, 2, 5}), x4({1, 2, 4}), y4({2, 1, 4}), big({1, 3, 4});
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x5.v(), y5.v()), hyena::error);
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x4.v(), y4.v()), hyena::error);
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, big.v(), big.v()), hyena::error);
  tensor<float> y4ok({1, 2, 4}), dy({1, 2, 4}), dx_bad({1, 2, 5});
  L::params g;
  arena<float> ga;
  ga.bind(g, c);
  L::forward(ctx, c, p, k, x4.v(), y4ok.v());
  CHECK_THROWS_AS(L::backward(ctx, c, p, k, dy.v(), dx_bad.v(), g), hyena::error);  // dx shape differs
}
