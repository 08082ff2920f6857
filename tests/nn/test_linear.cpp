#include <hyena/nn/linear.hpp>

#include "../support/layer_check.hpp"

using namespace hyena;

TEST_CASE("linear: gradients match central differences") {
  testing::check_layer_gradients<nn::linear>({.in = 5, .out = 7, .bias = true}, 2, 3);
  testing::check_layer_gradients<nn::linear>({.in = 6, .out = 4, .bias = false}, 1, 5);
}

TEST_CASE("linear: cpu matches cpu_ref") {
  testing::check_layer_parity<nn::linear>({.in = 33, .out = 65, .bias = true}, 3, 17);
}

TEST_CASE("linear: known values") {
  using L = nn::linear<backend::cpu, float>;
  L::config c{.in = 2, .out = 2, .bias = true};
  L::params p;
  arena<float> a;
  a.bind(p, c);
  float w[] = {1, 2, 3, 4}, b[] = {0.5f, -1};
  std::copy(w, w + 4, p.weight.data);
  std::copy(b, b + 2, p.bias.data);
  auto x = make_tensor<float>({1, 1, 2}, {1, -1});
  tensor<float> y({1, 1, 2});
  L::cache k;
  backend::host_context ctx;
  L::forward(ctx, c, p, k, x.v(), y.v());
  CHECK(y.data()[0] == doctest::Approx(-0.5));  // 1 - 2 + 0.5
  CHECK(y.data()[1] == doctest::Approx(-2.0));  // 3 - 4 - 1
}

TEST_CASE("linear: wrong input width throws hyena::error") {
  using L = nn::linear<backend::cpu, float>;
  L::config c{.in = 4, .out = 3};
  L::params p;
  arena<float> a;
  a.bind(p, c);
  tensor<float> x({2, 5}), y({2, 3});
  L::cache k;
  backend::host_context ctx;
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x.v(), y.v()), hyena::error);
}
