#include <hyena/nn/gelu_mlp.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "../support/layer_check.hpp"

using namespace hyena;

TEST_CASE("gelu_mlp: gradients match central differences") {
  testing::check_layer_gradients<nn::gelu_mlp>({.hidden = 5, .intermediate = 9, .bias = true}, 2, 3);
  testing::check_layer_gradients<nn::gelu_mlp>({.hidden = 4, .intermediate = 6, .bias = false}, 1, 3);
}

TEST_CASE("gelu_mlp: cpu matches cpu_ref") {
  testing::check_layer_parity<nn::gelu_mlp>({.hidden = 33, .intermediate = 70, .bias = true}, 2, 9);
}

TEST_CASE("gelu_mlp: parameter names and shapes follow GPT-NeoX") {
  model_config m;
  m.hidden = 8;
  m.intermediate = 32;
  m.mlp_bias = true;
  std::map<std::string, shape> got;
  nn::gelu_mlp<backend::cpu, float>::params p;
  for_each_tensor<float>(p, [&](const std::string& n, view<float>&, const shape& s) { got[n] = s; },
                         nn::gelu_mlp_config::from(m));
  CHECK(got.size() == 4);
  CHECK(got["fc_in.weight"] == shape{32, 8});
  CHECK(got["fc_in.bias"] == shape{32});
  CHECK(got["fc_out.weight"] == shape{8, 32});
  CHECK(got["fc_out.bias"] == shape{8});
  m.mlp_bias = false;
  got.clear();
  for_each_tensor<float>(p, [&](const std::string& n, view<float>&, const shape& s) { got[n] = s; },
                         nn::gelu_mlp_config::from(m));
  CHECK(got.size() == 2);
  CHECK(got.count("fc_in.bias") == 0);
}

TEST_CASE("gelu_mlp: matches a plain-loop implementation") {
  using L = nn::gelu_mlp<backend::cpu, double>;
  L::config c{.hidden = 3, .intermediate = 5, .bias = true};
  L::params p;
  L::cache k;
  arena<double> pa, ka;
  pa.bind(p, c);
  ka.bind(k, c, 1, 2);
  rng r(8);
  for (auto* v : {&p.fc_in.weight, &p.fc_in.bias, &p.fc_out.weight, &p.fc_out.bias}) fill_normal(*v, r, 0.7);
  tensor<double> x({1, 2, 3}), y({1, 2, 3});
  fill_normal(x.v(), r);
  backend::host_context ctx;
  L::forward(ctx, c, p, k, x.v(), y.v());
  for (index_t t = 0; t < 2; ++t) {
    std::vector<double> h(5);
    for (index_t j = 0; j < 5; ++j) {
      double a = p.fc_in.bias.data[j];
      for (index_t i = 0; i < 3; ++i) a += p.fc_in.weight(j, i) * x.data()[t * 3 + i];
      h[j] = 0.5 * a * (1 + std::erf(a / std::sqrt(2.0)));
    }
    for (index_t o = 0; o < 3; ++o) {
      double want = p.fc_out.bias.data[o];
      for (index_t j = 0; j < 5; ++j) want += p.fc_out.weight(o, j) * h[j];
      CHECK(y.data()[t * 3 + o] == doctest::Approx(want).epsilon(1e-12));
    }
  }
}

TEST_CASE("gelu_mlp: bad shapes throw hyena::error") {
  using L = nn::gelu_mlp<backend::cpu, float>;
  L::config c{.hidden = 4, .intermediate = 8};
  L::params p;
  L::cache k;
  arena<float> pa, ka;
  pa.bind(p, c);
  ka.bind(k, c, 1, 2);
  backend::host_context ctx;
  tensor<float> x5({1, 2, 5}), y5({1, 2, 5}), x4({1, 2, 4}), y4({1, 1, 4}), big({1, 4, 4});
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x5.v(), y5.v()), hyena::error);   // wrong width
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x4.v(), y4.v()), hyena::error);   // output shape differs
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, big.v(), big.v()), hyena::error); // more rows than the cache
}
