// The filter op group: sin activation, decay window, skip-term scale, strided copy.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu/cpu.hpp>
#include <hyena/tensor/random.hpp>

using namespace hyena;
using backend::cpu;
using backend::cpu_ref;

namespace {

template <class T>
std::vector<T> randn(index_t n, rng& r, double std = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = T(r.normal(0, std));
  return v;
}

template <class T>
double rel_err(const std::vector<T>& a, const std::vector<T>& b) {
  double num = 0, den = 1e-30;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(double(a[i]))) return INFINITY;
    num = std::max(num, std::abs(double(a[i]) - double(b[i])));
    den = std::max(den, std::abs(double(b[i])));
  }
  return num / den;
}

}  // namespace

TEST_CASE("sin: cpu matches cpu_ref, forward and backward (dx may alias dy)") {
  rng r(1);
  const index_t rows = 150, cols = 13;
  auto x = randn<float>(rows * cols, r, 2.0), dy = randn<float>(rows * cols, r), freq = randn<float>(cols, r);
  auto df0 = randn<float>(cols, r);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> y1(rows * cols, nan), y2(rows * cols, nan), dx1(rows * cols, nan), dx2 = dy, df1 = df0, df2 = df0;
  backend::host_context ctx;
  cpu_ref::sin_forward(ctx, rows, cols, freq.data(), x.data(), y1.data());
  cpu::sin_forward(ctx, rows, cols, freq.data(), x.data(), y2.data());
  cpu_ref::sin_backward(ctx, rows, cols, freq.data(), x.data(), dy.data(), dx1.data(), df1.data());
  cpu::sin_backward(ctx, rows, cols, freq.data(), x.data(), dx2.data(), dx2.data(), df2.data());  // in place
  CHECK(rel_err(y2, y1) < 1e-6);
  CHECK(rel_err(dx2, dx1) < 1e-6);
  CHECK(rel_err(df2, df1) < 1e-6);
}

TEST_CASE("sin: known value and central differences (cpu_ref, double)") {
  double freq[] = {2.0, -0.5}, x[] = {0.25, 1.5, -0.7, 3.0}, y[4];
  backend::host_context ctx;
  cpu_ref::sin_forward(ctx, 2, 2, freq, x, y);
  CHECK(y[0] == doctest::Approx(std::sin(0.5)));
  CHECK(y[3] == doctest::Approx(std::sin(-1.5)));
  // loss = sum(dy * sin(freq x))
  double dy[] = {0.3, -1.1, 0.8, 0.5}, dx[4], dfreq[2] = {0, 0};
  cpu_ref::sin_backward(ctx, 2, 2, freq, x, dy, dx, dfreq);
  auto loss = [&] {
    double out[4], s = 0;
    cpu_ref::sin_forward(ctx, 2, 2, freq, x, out);
    for (int i = 0; i < 4; ++i) s += dy[i] * out[i];
    return s;
  };
  const double eps = 1e-6;
  auto numeric = [&](double& v) {
    double saved = v;
    v = saved + eps;
    double up = loss();
    v = saved - eps;
    double down = loss();
    v = saved;
    return (up - down) / (2 * eps);
  };
  for (int i = 0; i < 4; ++i) CHECK(dx[i] == doctest::Approx(numeric(x[i])).epsilon(1e-6));
  for (int c = 0; c < 2; ++c) CHECK(dfreq[c] == doctest::Approx(numeric(freq[c])).epsilon(1e-6));
}

TEST_CASE("decay_window: formula, cpu vs cpu_ref, backward is the adjoint") {
  rng r(3);
  const index_t seq = 50, C = 7, hs = 53;
  const double t_step = 1.0 / 63, d0 = std::log(1e-2) / 0.3, d1 = std::log(1e-2) / 1.5;
  auto k = randn<double>(seq * C, r), dh = randn<double>(C * hs, r);
  std::vector<double> h1(C * hs, 0), h2(C * hs, 0), dk1(seq * C), dk2(seq * C);
  backend::host_context ctx;
  cpu_ref::decay_window_forward(ctx, seq, C, t_step, d0, d1, k.data(), h1.data(), hs);
  cpu::decay_window_forward(ctx, seq, C, t_step, d0, d1, k.data(), h2.data(), hs);
  for (index_t c = 0; c < C; ++c)
    for (index_t n = 0; n < seq; ++n) {
      double delta = d0 + (d1 - d0) * double(c) / double(C - 1);
      CHECK(h1[c * hs + n] == doctest::Approx(k[n * C + c] * std::exp(-std::abs(delta) * n * t_step)).epsilon(1e-13));
    }
  CHECK(rel_err(h2, h1) < 1e-12);
  cpu_ref::decay_window_backward(ctx, seq, C, t_step, d0, d1, dh.data(), hs, dk1.data());
  cpu::decay_window_backward(ctx, seq, C, t_step, d0, d1, dh.data(), hs, dk2.data());
  CHECK(rel_err(dk2, dk1) < 1e-12);
  double a = 0, b = 0;
  for (index_t c = 0; c < C; ++c)
    for (index_t n = 0; n < seq; ++n) a += dh[c * hs + n] * h1[c * hs + n];
  for (index_t i = 0; i < seq * C; ++i) b += dk1[i] * k[i];
  CHECK(a == doctest::Approx(b).epsilon(1e-12));
}

TEST_CASE("scale_add / scale_grad / copy_strided: known values and cpu vs cpu_ref") {
  backend::host_context ctx;
  {
    float scale[] = {2, -1}, x[] = {1, 2, 3, 4}, y[] = {10, 10, 10, 10}, ds[] = {1, 1};
    cpu::scale_add(ctx, 2, 2, scale, x, y);
    CHECK(y[0] == 12);
    CHECK(y[1] == 8);
    CHECK(y[2] == 16);
    CHECK(y[3] == 6);
    cpu::scale_grad(ctx, 2, 2, x, x, ds);  // 1 + sum x^2 per column
    CHECK(ds[0] == 11);
    CHECK(ds[1] == 21);
  }
  rng r(4);
  const index_t rows = 300, cols = 19;
  auto x = randn<float>(rows * cols, r), dy = randn<float>(rows * cols, r), s = randn<float>(cols, r);
  auto y1 = randn<float>(rows * cols, r), ds1 = randn<float>(cols, r);
  auto y2 = y1, ds2 = ds1;
  cpu_ref::scale_add(ctx, rows, cols, s.data(), x.data(), y1.data());
  cpu::scale_add(ctx, rows, cols, s.data(), x.data(), y2.data());
  cpu_ref::scale_grad(ctx, rows, cols, x.data(), dy.data(), ds1.data());
  cpu::scale_grad(ctx, rows, cols, x.data(), dy.data(), ds2.data());
  CHECK(rel_err(y2, y1) < 1e-6);
  CHECK(rel_err(ds2, ds1) < 1e-6);

  float src[] = {1, 2, 3, 4, 5, 6}, dst[] = {0, 0, 0, 0, 0, 0};
  cpu::copy_strided(ctx, 2, 2, src + 1, 3, dst, 3);  // columns 1..2 of a (2, 3) matrix
  CHECK(dst[0] == 2);
  CHECK(dst[1] == 3);
  CHECK(dst[2] == 0);
  CHECK(dst[3] == 5);
  CHECK(dst[4] == 6);
}

TEST_CASE("filter ops: bad sizes throw hyena::error") {
  float k[8] = {}, h[8];
  backend::host_context ctx;
  CHECK_THROWS_AS(cpu::decay_window_forward(ctx, 4, 2, 0.1, -1.0, -2.0, k, h, 3), hyena::error);
  CHECK_THROWS_AS(cpu_ref::decay_window_backward(ctx, 4, 2, 0.1, -1.0, -2.0, k, 3, h), hyena::error);
}
