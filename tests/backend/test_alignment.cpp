// The distillation ops of backend/*/alignment.hpp: attention matrices rebuilt from a forward,
// lag sums, and the Hyena-vs-attention mixing-matrix alignment with its gradients.
#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu/cpu.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

#include "../support/layer_check.hpp"

using namespace hyena;
using backend::cpu;
using backend::cpu_ref;
using testing::close;

namespace {

template <class T>
std::vector<T> normal(std::size_t n, rng& r, double std = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(r.normal(0, std));
  return v;
}

// The loss with M formed explicitly: the definition the op must match.
double explicit_alignment(index_t batch, index_t L, index_t C, index_t hd, const std::vector<double>& x0,
                          const std::vector<double>& x1, const std::vector<double>& h, const std::vector<double>& bias,
                          const std::vector<double>& P) {
  const index_t heads = C / hd;
  double total = 0;
  for (index_t b = 0; b < batch; ++b)
    for (index_t c = 0; c < C; ++c)
      for (index_t t = 0; t < L; ++t)
        for (index_t s = 0; s < L; ++s) {
          double m = 0;
          if (s <= t) m = x0[(b * L + t) * C + c] * (h[c * L + t - s] + (t == s ? bias[c] : 0.0)) * x1[(b * L + s) * C + c];
          const double d = m - P[((b * heads + c / hd) * L + t) * L + s];
          total += d * d;
        }
  return total;
}

}  // namespace

TEST_CASE("causal_attention_probs: rows are softmaxes whose product with v is the attention output") {
  const index_t batch = 2, L = 11, H = 4, KV = 2, D = 3, Q = (H + 2 * KV) * D;
  rng r(1);
  auto qkv = normal<double>(std::size_t(batch * L * Q), r);
  std::vector<double> out(std::size_t(batch * L * H * D)), lse(std::size_t(batch * H * L)), P(std::size_t(batch * H * L * L));
  backend::host_context ctx(1);
  const double scale = 1.0 / std::sqrt(double(D));
  cpu_ref::causal_attention_forward(ctx, batch, L, H, KV, D, scale, qkv.data(), Q, out.data(), H * D, lse.data());
  std::fill(P.begin(), P.end(), std::numeric_limits<double>::quiet_NaN());
  cpu_ref::causal_attention_probs(ctx, batch, L, H, KV, D, scale, qkv.data(), Q, lse.data(), P.data());
  for (index_t b = 0; b < batch; ++b)
    for (index_t h = 0; h < H; ++h)
      for (index_t t = 0; t < L; ++t) {
        const double* p = P.data() + ((b * H + h) * L + t) * L;
        double sum = 0;
        for (index_t s = 0; s < L; ++s) {
          if (s > t) CHECK(p[s] == 0.0);
          sum += p[s];
        }
        CHECK(sum == doctest::Approx(1.0).epsilon(1e-12));
        for (index_t i = 0; i < D; ++i) {
          double o = 0;
          for (index_t s = 0; s <= t; ++s) o += p[s] * qkv[std::size_t((b * L + s) * Q + (H + KV + h / 2) * D + i)];
          CHECK(close(o, out[std::size_t((b * L + t) * H * D + h * D + i)], 1e-12, 1e-14));
        }
      }
  // cpu (threaded, float) against cpu_ref.
  std::vector<float> qf(qkv.begin(), qkv.end()), lf(lse.begin(), lse.end()), Pf(P.size(), NAN), Pr(P.size());
  backend::host_context fast(3);
  cpu::causal_attention_probs(fast, batch, L, H, KV, D, float(scale), qf.data(), Q, lf.data(), Pf.data());
  cpu_ref::causal_attention_probs(ctx, batch, L, H, KV, D, float(scale), qf.data(), Q, lf.data(), Pr.data());
  for (std::size_t i = 0; i < P.size(); ++i) CHECK(close(Pf[i], Pr[i], 1e-5, 1e-7));
}

TEST_CASE("attention_lag_sums: sums along each diagonal, accumulated") {
  const index_t batch = 3, H = 2, L = 7;
  rng r(2);
  auto P = normal<double>(std::size_t(batch * H * L * L), r);
  std::vector<double> sums(std::size_t(H * L), 1.0);  // accumulates onto what is there
  backend::host_context ctx(1);
  cpu::attention_lag_sums(ctx, batch, H, L, P.data(), sums.data());
  for (index_t h = 0; h < H; ++h)
    for (index_t k = 0; k < L; ++k) {
      double expect = 1.0;
      for (index_t b = 0; b < batch; ++b)
        for (index_t t = k; t < L; ++t) expect += P[std::size_t(((b * H + h) * L + t) * L + t - k)];
      CHECK(close(sums[std::size_t(h * L + k)], expect, 1e-12, 1e-12));
    }
}

TEST_CASE("hyena_attention_alignment: loss, gradients (central differences, double) and cpu parity") {
  const index_t batch = 2, L = 6, C = 6, hd = 3, heads = C / hd;
  rng r(3);
  auto x0 = normal<double>(std::size_t(batch * L * C), r), x1 = normal<double>(std::size_t(batch * L * C), r);
  auto h = normal<double>(std::size_t(C * L), r), bias = normal<double>(std::size_t(C), r);
  auto P = normal<double>(std::size_t(batch * heads * L * L), r, 0.3);
  for (std::size_t i = 0; i < P.size(); ++i)
    if (index_t(i) % L > index_t(i) / L % L) P[i] = 0;  // causal: nothing above the diagonal
  backend::host_context ctx(1);
  const double gs = 0.7;
  std::vector<double> dx0(x0.size(), NAN), dx1(x1.size(), NAN), dh(h.size(), NAN), dbias(C, 0.25);
  const double loss = cpu_ref::hyena_attention_alignment(ctx, batch, L, C, hd, x0.data(), x1.data(), h.data(), L,
                                                         bias.data(), P.data(), dx0.data(), dx1.data(), dh.data(),
                                                         dbias.data(), gs);
  CHECK(close(loss, explicit_alignment(batch, L, C, hd, x0, x1, h, bias, P), 1e-12, 1e-12));
  auto f = [&] { return gs * explicit_alignment(batch, L, C, hd, x0, x1, h, bias, P); };
  auto fd = [&](std::vector<double>& x, const std::vector<double>& analytic, double offset, const char* what) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double saved = x[i], eps = 1e-6;
      x[i] = saved + eps;
      const double up = f();
      x[i] = saved - eps;
      const double down = f();
      x[i] = saved;
      INFO(std::string(what), "[", i, "]: analytic ", analytic[i] - offset, " numeric ", (up - down) / (2 * eps));
      CHECK(close(analytic[i] - offset, (up - down) / (2 * eps), 1e-6, 1e-7));
    }
  };
  fd(x0, dx0, 0, "d_x0");
  fd(x1, dx1, 0, "d_x1");
  fd(h, dh, 0, "d_h");
  fd(bias, dbias, 0.25, "d_bias");  // accumulated onto 0.25

  // cpu (threaded, float) against cpu_ref (float).
  auto as_f = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  auto fx0 = as_f(x0), fx1 = as_f(x1), fh = as_f(h), fb = as_f(bias), fP = as_f(P);
  std::vector<float> r0(x0.size()), r1(x1.size()), rh(h.size()), rb(C, 0.f), c0(x0.size(), NAN), c1(x1.size(), NAN),
      ch(h.size(), NAN), cb(C, 0.f);
  backend::host_context fast(4);
  const double lr = cpu_ref::hyena_attention_alignment(ctx, batch, L, C, hd, fx0.data(), fx1.data(), fh.data(), L,
                                                       fb.data(), fP.data(), r0.data(), r1.data(), rh.data(),
                                                       rb.data(), 0.7f);
  const double lc = cpu::hyena_attention_alignment(fast, batch, L, C, hd, fx0.data(), fx1.data(), fh.data(), L,
                                                   fb.data(), fP.data(), c0.data(), c1.data(), ch.data(), cb.data(),
                                                   0.7f);
  CHECK(close(lc, lr, 1e-5, 1e-6));
  for (std::size_t i = 0; i < r0.size(); ++i) CHECK((close(c0[i], r0[i], 1e-4, 1e-5) && close(c1[i], r1[i], 1e-4, 1e-5)));
  for (std::size_t i = 0; i < rh.size(); ++i) CHECK(close(ch[i], rh[i], 1e-4, 1e-5));
  for (index_t i = 0; i < C; ++i) CHECK(close(cb[std::size_t(i)], rb[std::size_t(i)], 1e-4, 1e-5));
  // Without gradient pointers only the loss comes back.
  CHECK(close(cpu::hyena_attention_alignment(fast, batch, L, C, hd, fx0.data(), fx1.data(), fh.data(), L, fb.data(),
                                             fP.data(), (float*)nullptr, (float*)nullptr, (float*)nullptr,
                                             (float*)nullptr, 1.0f),
              lr, 1e-5, 1e-6));
}
