// The conv op group: the FFT causal conv against the direct one, the short conv against the
// reference, the backward ops as exact adjoints of the forward ones, and known values.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu/cpu.hpp>
#include <hyena/tensor/random.hpp>

using namespace hyena;
using backend::cpu;
using backend::cpu_ref;

namespace {

template <class T>
std::vector<T> randn(index_t n, rng& r) {
  std::vector<T> v(n);
  for (auto& x : v) x = T(r.normal());
  return v;
}

template <class T>
double dot(const std::vector<T>& a, const std::vector<T>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}

// max |a - b| / max |b|
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

// cpu (FFT) against cpu_ref (direct) for one size; dh starts non-zero to check accumulation.
template <class T>
void check_causal_parity(index_t batch, index_t seq, index_t channels, index_t pad, double tol, int threads = 0) {
  rng r(seq * 131 + channels);
  const index_t hs = seq + pad, n = batch * seq * channels;
  auto x = randn<T>(n, r), h = randn<T>(channels * hs, r), dy = randn<T>(n, r), dh0 = randn<T>(channels * hs, r);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> y_ref(n, nan), y_fast(n, nan), dx_ref(n, nan), dx_fast(n, nan), dh_ref = dh0, dh_fast = dh0;
  backend::host_context ctx(threads);
  cpu_ref::causal_conv_forward(ctx, batch, seq, channels, x.data(), h.data(), hs, y_ref.data());
  cpu::causal_conv_forward(ctx, batch, seq, channels, x.data(), h.data(), hs, y_fast.data());
  cpu_ref::causal_conv_backward(ctx, batch, seq, channels, x.data(), h.data(), hs, dy.data(), dx_ref.data(), dh_ref.data());
  cpu::causal_conv_backward(ctx, batch, seq, channels, x.data(), h.data(), hs, dy.data(), dx_fast.data(), dh_fast.data());
  INFO("batch ", batch, " seq ", seq, " channels ", channels, " threads ", ctx.threads());
  CHECK(rel_err(y_fast, y_ref) < tol);
  CHECK(rel_err(dx_fast, dx_ref) < tol);
  CHECK(rel_err(dh_fast, dh_ref) < tol);
  // The padding past seq in each filter row is neither read nor written.
  for (index_t c = 0; c < channels; ++c)
    for (index_t s = seq; s < hs; ++s) CHECK(dh_fast[c * hs + s] == dh0[c * hs + s]);
}

}  // namespace

TEST_CASE("causal_conv: FFT (cpu) equals the direct conv (cpu_ref), forward and backward") {
  for (index_t seq : {1, 2, 3, 5, 7, 8, 13, 31, 64, 100, 257}) {
    check_causal_parity<float>(2, seq, 11, 3, 2e-5);
    check_causal_parity<double>(3, seq, 9, 0, 1e-12);
  }
  // More channels than one tile per thread, odd counts.
  check_causal_parity<float>(1, 48, 37, 1, 2e-5);
}

TEST_CASE("causal_conv: channel blocks, partial blocks and the thread schedules") {
  // 40 channels: a full block of 2W lanes and a partial one (W = 16 floats, 8 doubles with AVX-512).
  check_causal_parity<float>(3, 300, 40, 2, 2e-5);
  check_causal_parity<double>(3, 300, 40, 2, 1e-12);
  // Fewer blocks than threads: gangs of threads share a block, splitting the batch rows.
  for (int threads : {2, 3, 4}) {
    check_causal_parity<float>(5, 300, 32, 1, 2e-5, threads);
    check_causal_parity<double>(5, 260, 16, 0, 1e-12, threads);
  }
  // More blocks than threads, not a multiple of them; a length just past a power of two.
  check_causal_parity<float>(2, 129, 100, 0, 2e-5, 3);
  check_causal_parity<float>(3, 513, 8, 0, 2e-5, 3);
}

TEST_CASE("causal_conv: a null dx or dh is skipped") {
  rng r(5);
  const index_t b = 2, L = 9, C = 4, n = b * L * C;
  auto x = randn<float>(n, r), h = randn<float>(C * L, r), dy = randn<float>(n, r);
  std::vector<float> dh_a(C * L, 0), dh_b(C * L, 0), dx(n, 0);
  backend::host_context ctx;
  cpu::causal_conv_backward(ctx, b, L, C, x.data(), h.data(), L, dy.data(), static_cast<float*>(nullptr), dh_a.data());
  cpu::causal_conv_backward(ctx, b, L, C, x.data(), h.data(), L, dy.data(), dx.data(), static_cast<float*>(nullptr));
  cpu::causal_conv_backward(ctx, b, L, C, x.data(), h.data(), L, dy.data(), static_cast<float*>(nullptr), dh_b.data());
  CHECK(rel_err(dh_a, dh_b) < 1e-7);
  CHECK(dot(dx, dx) > 0);
}

TEST_CASE("causal_conv: backward is the adjoint of forward (cpu_ref, double)") {
  // loss = <dy, conv(x, h)> is bilinear, so <dx, x> = <dh, h> = loss exactly.
  rng r(7);
  const index_t b = 2, L = 10, C = 3, hs = 12, n = b * L * C;
  auto x = randn<double>(n, r), dy = randn<double>(n, r), h = randn<double>(C * hs, r);
  for (index_t c = 0; c < C; ++c) std::fill(h.begin() + c * hs + L, h.begin() + (c + 1) * hs, 0.0);
  std::vector<double> y(n), dx(n), dh(C * hs, 0.0);
  backend::host_context ctx;
  cpu_ref::causal_conv_forward(ctx, b, L, C, x.data(), h.data(), hs, y.data());
  cpu_ref::causal_conv_backward(ctx, b, L, C, x.data(), h.data(), hs, dy.data(), dx.data(), dh.data());
  double loss = dot(dy, y);
  CHECK(dot(dx, x) == doctest::Approx(loss).epsilon(1e-12));
  CHECK(dot(dh, h) == doctest::Approx(loss).epsilon(1e-12));
}

TEST_CASE("causal_conv: known values") {
  // One channel: y_t = sum_{s<=t} h_s x_{t-s}; x = [1, 2, 3], h = [1, 10, 100].
  float x[] = {1, 2, 3}, h[] = {1, 10, 100}, y[3];
  backend::host_context ctx;
  for (int fast = 0; fast < 2; ++fast) {
    if (fast) cpu::causal_conv_forward(ctx, 1, 3, 1, x, h, 3, y);
    else cpu_ref::causal_conv_forward(ctx, 1, 3, 1, x, h, 3, y);
    CHECK(y[0] == doctest::Approx(1));
    CHECK(y[1] == doctest::Approx(12));   // 2 + 10
    CHECK(y[2] == doctest::Approx(123));  // 3 + 20 + 100
  }
}

TEST_CASE("short_conv: cpu matches cpu_ref, forward and backward") {
  for (index_t K : {1, 3, 4})
    for (index_t L : {1, 2, 7, 40}) {
      rng r(K * 100 + L);
      const index_t b = 3, C = 21, n = b * L * C;
      auto x = randn<float>(n, r), w = randn<float>(C * K, r), bias = randn<float>(C, r), dy = randn<float>(n, r);
      auto dw0 = randn<float>(C * K, r), db0 = randn<float>(C, r);
      std::vector<float> y1(n), y2(n), dx1(n), dx2(n), dw1 = dw0, dw2 = dw0, db1 = db0, db2 = db0;
      backend::host_context ctx;
      cpu_ref::short_conv_forward(ctx, b, L, C, K, x.data(), w.data(), bias.data(), y1.data());
      cpu::short_conv_forward(ctx, b, L, C, K, x.data(), w.data(), bias.data(), y2.data());
      cpu_ref::short_conv_backward(ctx, b, L, C, K, x.data(), w.data(), dy.data(), dx1.data(), dw1.data(), db1.data());
      cpu::short_conv_backward(ctx, b, L, C, K, x.data(), w.data(), dy.data(), dx2.data(), dw2.data(), db2.data());
      INFO("K ", K, " L ", L);
      CHECK(rel_err(y2, y1) < 1e-6);
      CHECK(rel_err(dx2, dx1) < 1e-6);
      CHECK(rel_err(dw2, dw1) < 1e-6);
      CHECK(rel_err(db2, db1) < 1e-6);
    }
}

TEST_CASE("short_conv: cpu backward matches cpu_ref with rows split among threads") {
  // Enough rows that every thread gets a block, each longer than the 64-row flush into double,
  // and a thread's block starting mid-sequence (the taps' edge rows fall inside a block).
  for (int threads : {1, 2, 3})
    for (bool with_dx : {true, false}) {
      rng r(threads);
      const index_t b = 3, L = 301, C = 40, K = 4, n = b * L * C;
      auto x = randn<float>(n, r), w = randn<float>(C * K, r), dy = randn<float>(n, r);
      auto dw0 = randn<float>(C * K, r), db0 = randn<float>(C, r);
      std::vector<float> dx1(n), dx2(n, std::nanf("")), dw1 = dw0, dw2 = dw0, db1 = db0, db2 = db0;
      backend::host_context ctx(threads);
      cpu_ref::short_conv_backward(ctx, b, L, C, K, x.data(), w.data(), dy.data(), dx1.data(), dw1.data(), db1.data());
      cpu::short_conv_backward(ctx, b, L, C, K, x.data(), w.data(), dy.data(), with_dx ? dx2.data() : nullptr,
                               dw2.data(), db2.data());
      INFO("threads ", threads, " dx ", with_dx);
      if (with_dx) CHECK(rel_err(dx2, dx1) < 1e-6);
      CHECK(rel_err(dw2, dw1) < 1e-6);
      CHECK(rel_err(db2, db1) < 1e-6);
      // Without a bias gradient, the taps' sums are still right.
      std::vector<float> dw3 = dw0;
      cpu::short_conv_backward(ctx, b, L, C, K, x.data(), w.data(), dy.data(), dx2.data(), dw3.data(),
                               static_cast<float*>(nullptr));
      CHECK(rel_err(dw3, dw1) < 1e-6);
    }
}

TEST_CASE("short_conv: backward is the adjoint of forward (cpu_ref, double)") {
  rng r(11);
  const index_t b = 2, L = 6, C = 3, K = 3, n = b * L * C;
  auto x = randn<double>(n, r), w = randn<double>(C * K, r), dy = randn<double>(n, r);
  std::vector<double> zero_bias(C, 0.0), y(n), dx(n), dw(C * K, 0.0), db(C, 0.0);
  backend::host_context ctx;
  cpu_ref::short_conv_forward(ctx, b, L, C, K, x.data(), w.data(), zero_bias.data(), y.data());
  cpu_ref::short_conv_backward(ctx, b, L, C, K, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  double loss = dot(dy, y);
  CHECK(dot(dx, x) == doctest::Approx(loss).epsilon(1e-12));
  CHECK(dot(dw, w) == doctest::Approx(loss).epsilon(1e-12));
  for (index_t c = 0; c < C; ++c) {
    double s = 0;
    for (index_t i = 0; i < b * L; ++i) s += dy[i * C + c];
    CHECK(db[c] == doctest::Approx(s));
  }
}

TEST_CASE("short_conv: known values (PyTorch Conv1d, padding K-1, first L outputs)") {
  // Channel 0: w = [1, 2, 3] (w[K-1] multiplies the current step), bias 0.5; x = [1, 10, 100].
  float x[] = {1, 10, 100}, w[] = {1, 2, 3}, bias[] = {0.5f}, y[3];
  backend::host_context ctx;
  for (int fast = 0; fast < 2; ++fast) {
    if (fast) cpu::short_conv_forward(ctx, 1, 3, 1, 3, x, w, bias, y);
    else cpu_ref::short_conv_forward(ctx, 1, 3, 1, 3, x, w, bias, y);
    CHECK(y[0] == doctest::Approx(3.5));    // 3*1
    CHECK(y[1] == doctest::Approx(32.5));   // 2*1 + 3*10
    CHECK(y[2] == doctest::Approx(321.5));  // 1*1 + 2*10 + 3*100
  }
}

TEST_CASE("conv ops: bad sizes throw hyena::error") {
  float x[4] = {}, h[4] = {}, y[4];
  backend::host_context ctx;
  CHECK_THROWS_AS(cpu::causal_conv_forward(ctx, 1, 4, 1, x, h, 3, y), hyena::error);  // h_stride < seq
  CHECK_THROWS_AS(cpu_ref::causal_conv_forward(ctx, 1, 4, 1, x, h, 3, y), hyena::error);
  CHECK_THROWS_AS(cpu::causal_conv_backward(ctx, 1, 4, 1, x, h, 2, x, y, y), hyena::error);
  CHECK_THROWS_AS(cpu::short_conv_forward(ctx, 1, 4, 1, 0, x, h, h, y), hyena::error);  // kernel 0
  CHECK_THROWS_AS(cpu_ref::short_conv_backward(ctx, 1, 4, 1, 0, x, h, x, y, y, y), hyena::error);
}
