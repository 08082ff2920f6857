#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <hyena/tensor/random.hpp>
#include <hyena/train/grad_clip.hpp>

using namespace hyena;

TEST_CASE("grad clip: global norm over several views, known values") {
  auto a = make_tensor<float>({2}, {3, 0}), b = make_tensor<float>({1, 1}, {4});  // norm 5
  std::vector<view<float>> g{a.v(), b.v()};
  CHECK(train::global_grad_norm(g) == doctest::Approx(5.0));
  double pre = train::clip_grad_norm(g, 1.0);
  CHECK(pre == doctest::Approx(5.0));
  CHECK(a.data()[0] == doctest::Approx(3.0 / (5 + 1e-6)));
  CHECK(b.data()[0] == doctest::Approx(4.0 / (5 + 1e-6)));
  CHECK(train::global_grad_norm(g) == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("grad clip: below the threshold or max_norm <= 0 leaves grads alone") {
  auto a = make_tensor<double>({3}, {1, 2, 2});  // norm 3
  std::vector<view<double>> g{a.v()};
  CHECK(train::clip_grad_norm(g, 3.5) == doctest::Approx(3.0));
  CHECK(train::clip_grad_norm(g, 0.0) == doctest::Approx(3.0));
  CHECK(a.data()[1] == 2.0);
}

TEST_CASE("grad clip: large tensor matches a plain double sum, over param entries") {
  tensor<float> p({300000}), g({300000});
  rng r(3);
  fill_normal(g.v(), r, 1e-2);
  double s = 0;
  for (index_t i = 0; i < g.numel(); ++i) s += double(g.data()[i]) * g.data()[i];
  std::vector<train::param_entry<float>> entries{{"x", p.v(), g.v()}};
  float before = g.data()[7];
  double pre = train::clip_grad_norm(entries, 0.5);
  CHECK(pre == doctest::Approx(std::sqrt(s)).epsilon(1e-12));
  CHECK(g.data()[7] == doctest::Approx(before * 0.5 / (pre + 1e-6)).epsilon(1e-6));
}

TEST_CASE("grad clip: a non-finite norm is reported and nothing is scaled") {
  auto a = make_tensor<float>({2}, {NAN, 1});
  std::vector<view<float>> g{a.v()};
  CHECK_FALSE(std::isfinite(train::clip_grad_norm(g, 1.0)));
  CHECK(a.data()[1] == 1.0f);
}

TEST_CASE("grad clip: a non-contiguous view throws hyena::error") {
  tensor<float> t({4, 4});
  view<float> col(t.data(), shape{4}, {4, 0, 0, 0});
  std::vector<view<float>> g{col};
  CHECK_THROWS_AS(train::clip_grad_norm(g, 1.0), hyena::error);
}
