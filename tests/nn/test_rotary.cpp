#include <hyena/nn/rotary.hpp>

#include <cmath>
#include <vector>

#include "../support/layer_check.hpp"

using namespace hyena;

namespace {

nn::rotary_config make(index_t heads, index_t head_dim, double pct, double base = 10000.0) {
  return {.heads = heads, .head_dim = head_dim, .rot_dims = nn::rotary_config::dims_for(head_dim, pct), .base = base};
}

// Runs the rotary layer forward (or backward) on x, returns the result.
template <class B, class T>
std::vector<T> run(const nn::rotary_config& c, index_t batch, index_t seq, const std::vector<T>& x,
                   bool backward = false) {
  using L = nn::rotary<B, T>;
  auto in = make_tensor<T>(L::input_shape(c, batch, seq), x);
  tensor<T> out(L::output_shape(c, batch, seq));
  typename L::params p;
  typename L::cache k;
  backend::host_context ctx;
  if (backward) L::backward(ctx, c, p, k, in.v(), out.v(), p);
  else L::forward(ctx, c, p, k, in.v(), out.v());
  return std::vector<T>(out.data(), out.data() + out.numel());
}

std::vector<double> random_values(index_t n, std::uint64_t seed) {
  rng r(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = r.normal();
  return v;
}

}  // namespace

TEST_CASE("rotary: dims_for follows GPT-NeoX and rounds down to even") {
  CHECK(nn::rotary_config::dims_for(64, 0.25) == 16);
  CHECK(nn::rotary_config::dims_for(8, 1.0) == 8);
  CHECK(nn::rotary_config::dims_for(6, 0.5) == 2);  // int(3.0) = 3 -> 2
  CHECK(nn::rotary_config::dims_for(16, 0.0) == 0);
}

TEST_CASE("rotary: gradients match central differences") {
  testing::check_layer_gradients<nn::rotary>(make(3, 8, 0.25), 2, 5);
  testing::check_layer_gradients<nn::rotary>(make(2, 8, 1.0), 2, 6);
  testing::check_layer_gradients<nn::rotary>(make(2, 6, 1.0, 100.0), 1, 7);
}

TEST_CASE("rotary: cpu matches cpu_ref") {
  testing::check_layer_parity<nn::rotary>(make(4, 64, 0.25), 2, 33);  // vector body
  testing::check_layer_parity<nn::rotary>(make(3, 64, 1.0), 2, 40);
  testing::check_layer_parity<nn::rotary>(make(5, 12, 0.5), 3, 9);  // scalar tail only
}

TEST_CASE("rotary: known values (rotate_half convention)") {
  // head_dim 4, rot_dims 4, base 100: pair (0, 2) turns by pos * 1, pair (1, 3) by pos * 0.1.
  auto c = make(1, 4, 1.0, 100.0);
  std::vector<double> x = {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4};  // positions 0, 1, 2
  auto check = [&](auto y) {
    for (int i = 0; i < 4; ++i) CHECK(y[i] == doctest::Approx(x[i]).epsilon(1e-6));  // position 0: identity
    for (int pos = 1; pos <= 2; ++pos) {
      double a = pos * 1.0, b = pos * 0.1;
      const auto* v = y.data() + 4 * pos;
      CHECK(v[0] == doctest::Approx(1 * std::cos(a) - 3 * std::sin(a)).epsilon(1e-6));
      CHECK(v[2] == doctest::Approx(3 * std::cos(a) + 1 * std::sin(a)).epsilon(1e-6));
      CHECK(v[1] == doctest::Approx(2 * std::cos(b) - 4 * std::sin(b)).epsilon(1e-6));
      CHECK(v[3] == doctest::Approx(4 * std::cos(b) + 2 * std::sin(b)).epsilon(1e-6));
    }
  };
  check(run<backend::cpu_ref, double>(c, 1, 3, x));
  std::vector<float> xf(x.begin(), x.end());
  check(run<backend::cpu, float>(c, 1, 3, xf));
}

TEST_CASE("rotary: matches an independent cos/sin-table formulation") {
  // y = x * cos(emb) + rotate_half(x) * sin(emb) on the rotated dims, emb = [freqs, freqs].
  const index_t heads = 2, hd = 10, seq = 6, batch = 2;
  auto c = make(heads, hd, 0.8, 500.0);  // rot_dims 8, dims 8..9 pass through
  REQUIRE(c.rot_dims == 8);
  auto x = random_values(batch * seq * heads * hd, 5);
  auto y = run<backend::cpu_ref, double>(c, batch, seq, x);
  const index_t r = c.rot_dims, half = r / 2;
  for (index_t b = 0; b < batch; ++b)
    for (index_t s = 0; s < seq; ++s)
      for (index_t h = 0; h < heads; ++h) {
        const double* xv = x.data() + ((b * seq + s) * heads + h) * hd;
        const double* yv = y.data() + ((b * seq + s) * heads + h) * hd;
        for (index_t d = 0; d < hd; ++d) {
          double expect = xv[d];
          if (d < r) {
            double emb = s / std::pow(500.0, double(2 * (d % half)) / double(r));
            double rot_half = d < half ? -xv[d + half] : xv[d - half];
            expect = xv[d] * std::cos(emb) + rot_half * std::sin(emb);
          }
          CHECK(yv[d] == doctest::Approx(expect).epsilon(1e-12));
        }
      }
}

TEST_CASE("rotary: preserves pair norms, and backward undoes forward") {
  const index_t heads = 3, hd = 16, seq = 50, batch = 2;
  auto c = make(heads, hd, 0.5);
  auto x = random_values(batch * seq * heads * hd, 9);
  std::vector<float> xf(x.begin(), x.end());
  auto y = run<backend::cpu, float>(c, batch, seq, xf);
  auto back = run<backend::cpu, float>(c, batch, seq, y, true);
  const index_t half = c.rot_dims / 2;
  for (index_t row = 0; row < batch * seq * heads; ++row)
    for (index_t i = 0; i < half; ++i) {
      index_t a = row * hd + i, b = a + half;
      CHECK(std::hypot(y[a], y[b]) == doctest::Approx(std::hypot(xf[a], xf[b])).epsilon(1e-5));
    }
  for (std::size_t i = 0; i < xf.size(); ++i) CHECK(back[i] == doctest::Approx(xf[i]).epsilon(1e-5));
}

TEST_CASE("rotary: bad configs and shapes throw hyena::error") {
  using L = nn::rotary<backend::cpu, float>;
  backend::host_context ctx;
  L::params p;
  L::cache k;
  tensor<float> x({1, 2, 8}), y({1, 2, 8});
  CHECK_THROWS_AS(L::forward(ctx, {.heads = 1, .head_dim = 8, .rot_dims = 3}, p, k, x.v(), y.v()), hyena::error);
  CHECK_THROWS_AS(L::forward(ctx, {.heads = 1, .head_dim = 8, .rot_dims = 10}, p, k, x.v(), y.v()), hyena::error);
  CHECK_THROWS_AS(L::forward(ctx, {.heads = 2, .head_dim = 8, .rot_dims = 4}, p, k, x.v(), y.v()), hyena::error);
  CHECK_THROWS_AS(nn::rotary_config::dims_for(8, 1.5), hyena::error);
  CHECK_NOTHROW(L::forward(ctx, {.heads = 1, .head_dim = 8, .rot_dims = 4}, p, k, x.v(), y.v()));
}
