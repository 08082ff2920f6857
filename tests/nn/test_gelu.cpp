#include <hyena/nn/gelu.hpp>

#include <cmath>
#include <numbers>
#include <vector>

#include "../support/layer_check.hpp"

using namespace hyena;

TEST_CASE("gelu: gradients match central differences") {
  testing::check_layer_gradients<nn::gelu>({.dim = 9}, 2, 3);
}

TEST_CASE("gelu: cpu matches cpu_ref") {
  testing::check_layer_parity<nn::gelu>({.dim = 37}, 3, 17);
  testing::check_layer_parity<nn::gelu>({.dim = 3}, 1, 1);
}

TEST_CASE("gelu ops: known values on both backends, threaded, dx aliasing dy") {
  // GELU(x) = x * Phi(x) (exact erf form); GELU'(x) = Phi(x) + x * phi(x).
  const double phi1 = 0.8413447460685429, pdf1 = 0.24197072451914337;
  auto check_backend = [&](auto backend_tag) {
    using B = decltype(backend_tag);
    backend::host_context ctx(3);
    const index_t n = 40000;  // large enough to be split across threads
    std::vector<float> x(n), y(n), g(n, 1.0f);
    for (index_t i = 0; i < n; ++i) x[i] = float(i % 5) - 2.0f;  // -2, -1, 0, 1, 2
    B::gelu_forward(ctx, n, x.data(), y.data());
    B::gelu_backward(ctx, n, x.data(), g.data(), g.data());  // in place
    for (index_t i = 0; i < 10; ++i) {
      double v = x[i], cdf = 0.5 * (1 + std::erf(v / std::sqrt(2.0)));
      double pdf = std::exp(-v * v / 2) / std::sqrt(2 * std::numbers::pi);
      CHECK(y[i] == doctest::Approx(v * cdf).epsilon(1e-6));
      CHECK(g[i] == doctest::Approx(cdf + v * pdf).epsilon(1e-6));
    }
    CHECK(y[3] == doctest::Approx(phi1).epsilon(1e-7));          // GELU(1)
    CHECK(y[1] == doctest::Approx(phi1 - 1).epsilon(1e-6));      // GELU(-1) = -(1 - Phi(1))
    CHECK(y[2] == 0.0f);
    CHECK(g[3] == doctest::Approx(phi1 + pdf1).epsilon(1e-6));
    CHECK(y[n - 2] == doctest::Approx(phi1).epsilon(1e-7));      // the far end of the last thread
  };
  check_backend(backend::cpu_ref{});
  check_backend(backend::cpu{});
}

TEST_CASE("gelu: double precision known value") {
  double x = 1, y = 0;
  backend::host_context ctx;
  backend::cpu_ref::gelu_forward(ctx, 1, &x, &y);
  CHECK(y == doctest::Approx(0.8413447460685429).epsilon(1e-15));
  backend::cpu::gelu_forward(ctx, 1, &x, &y);
  CHECK(y == doctest::Approx(0.8413447460685429).epsilon(1e-12));
}

TEST_CASE("gelu: bad shapes throw hyena::error") {
  using L = nn::gelu<backend::cpu, float>;
  L::config c{.dim = 4};
  L::params p;
  L::cache k;
  backend::host_context ctx;
  tensor<float> x({2, 5}), y({2, 5}), x4({2, 4}), y4({4, 2});
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x.v(), y.v()), hyena::error);
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x4.v(), y4.v()), hyena::error);
}
