// train/operator_alignment.hpp: the normalised mixing-matrix loss of a Hyena operator against
// attention matrices, with its gradient through the operator's parameters.
#include <hyena/train/operator_alignment.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "../support/layer_check.hpp"

using namespace hyena;

namespace {
template <class B, class T>
struct rig {
  using op = nn::hyena_operator<B, T>;
  typename op::config cfg;
  typename op::params p, g;
  typename op::cache k;
  arena<T> pa, ga, ka;
  tensor<T> x, y, probs;
  typename B::context ctx{1};
  train::operator_alignment<B, T> align;
  index_t head_dim;

  rig(index_t batch, index_t L, index_t D, index_t heads, index_t order = 2)
      : cfg{.hidden = D, .order = order, .filter_order = 6, .emb_dim = 5, .filter_layers = 1, .short_filter = 3,
            .max_seq = L + 3},
        x({batch, L, D}), y({batch, L, D}), probs({batch, heads, L, L}), head_dim(D / heads) {
    pa.bind(p, cfg);
    ga.bind(g, cfg);
    ka.bind(k, cfg, batch, L);
    rng r(5);
    op::init(cfg, p, r);
    auto flat = pa.flat();
    for (index_t i = 0; i < flat.numel(); ++i) flat.data[i] += T(r.normal(0, 0.1));
    fill_normal(x.v(), r);
    // Causal row-stochastic matrices, like attention.
    for (index_t row = 0; row < batch * heads * L; ++row) {
      const index_t t = row % L;
      double sum = 0;
      for (index_t s = 0; s < L; ++s) sum += probs.data()[row * L + s] = s <= t ? T(std::exp(r.normal(0, 1))) : T(0);
      for (index_t s = 0; s <= t; ++s) probs.data()[row * L + s] = T(probs.data()[row * L + s] / sum);
    }
  }
  double loss(typename op::params* grads) {
    op::forward(ctx, cfg, p, k, x.v(), y.v());
    return align(ctx, cfg, p, k, probs.v(), head_dim, grads, 1.0);
  }
};
}  // namespace

TEST_CASE("operator alignment: gradient through every operator parameter matches central differences (double)") {
  rig<backend::cpu_ref, double> t(2, 7, 6, 2);
  t.ga.zero();
  const double base = t.loss(&t.g);
  CHECK(base > 0);
  std::vector<view<double>> ps, gs;
  std::vector<std::string> names;
  for_each_tensor<double>(t.p, [&](const std::string& n, view<double>& v, const shape&) { ps.push_back(v), names.push_back(n); }, t.cfg);
  for_each_tensor<double>(t.g, [&](const std::string&, view<double>& v, const shape&) { gs.push_back(v); }, t.cfg);
  index_t nonzero = 0;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    if (names[i] == "out_proj.weight" || names[i] == "out_proj.bias") {
      // M does not involve out_proj: no gradient there.
      for (index_t j = 0; j < gs[i].numel(); ++j) CHECK(gs[i].data[j] == 0.0);
      continue;
    }
    const index_t n = ps[i].numel(), stride = std::max<index_t>(1, n / 5);
    for (index_t j = 0; j < n; j += stride) {
      double& w = ps[i].data[j];
      const double saved = w, eps = 1e-6;
      w = saved + eps;
      const double up = t.loss(nullptr);
      w = saved - eps;
      const double down = t.loss(nullptr);
      w = saved;
      const double numeric = (up - down) / (2 * eps);
      INFO(names[i], "[", j, "]: analytic ", gs[i].data[j], " numeric ", numeric);
      CHECK(testing::close(gs[i].data[j], numeric, 1e-5, 1e-9));
      nonzero += gs[i].data[j] != 0.0;
    }
  }
  CHECK(nonzero > 10);
}

TEST_CASE("operator alignment: with gates at 1 the loss is the Toeplitz mismatch, 0 where M equals P") {
  // Gates 1 (zero weights, bias 1) and an identity short conv make M[t, s] = h[t - s] + [t = s] D.
  // Each head's P is set to the exact M of its first channel, so those channels contribute 0
  // and the loss is the second channels' mismatch over head_dim * ||P||^2.
  rig<backend::cpu_ref, double> t(1, 6, 4, 2);
  using op = nn::hyena_operator<backend::cpu_ref, double>;
  const index_t D = 4, L = 6;
  for (index_t j = 0; j < 2; ++j)
    for (index_t c = 0; c < D; ++c) {
      for (index_t i = 0; i < D; ++i) t.p.in_proj.weight.data[(j * D + c) * D + i] = 0;
      t.p.in_proj.bias.data[j * D + c] = 1;
    }
  for (index_t c = 0; c < 3 * D; ++c) {
    t.p.short_filter.weight.data[c * 3 + 0] = t.p.short_filter.weight.data[c * 3 + 1] = 0;
    t.p.short_filter.weight.data[c * 3 + 2] = 1;
    t.p.short_filter.bias.data[c] = 0;
  }
  op::forward(t.ctx, t.cfg, t.p, t.k, t.x.v(), t.y.v());
  auto M = [&](index_t c, index_t tt, index_t s) {
    return s <= tt ? t.k.h.data[c * L + tt - s] + (tt == s ? t.p.bias.data[c] : 0.0) : 0.0;
  };
  for (index_t h = 0; h < 2; ++h)
    for (index_t tt = 0; tt < L; ++tt)
      for (index_t s = 0; s < L; ++s) t.probs.data()[(h * L + tt) * L + s] = M(2 * h, tt, s);
  double odd = 0, norm = 0;
  for (index_t h = 0; h < 2; ++h)
    for (index_t tt = 0; tt < L; ++tt)
      for (index_t s = 0; s <= tt; ++s) {
        const double pm = t.probs.data()[(h * L + tt) * L + s], d = M(2 * h + 1, tt, s) - pm;
        odd += d * d;
        norm += 2 * pm * pm;
      }
  CHECK(odd > 0);
  CHECK(t.align(t.ctx, t.cfg, t.p, t.k, t.probs.v(), 2, nullptr) == doctest::Approx(odd / norm).epsilon(1e-10));
}

TEST_CASE("operator alignment: refused for orders above 2 and mismatched shapes") {
  rig<backend::cpu_ref, double> t3(1, 5, 4, 2, 3);
  CHECK_THROWS_WITH_AS(t3.loss(nullptr), doctest::Contains("order 2"), hyena::error);
  rig<backend::cpu_ref, double> t(1, 5, 4, 2);
  using op = nn::hyena_operator<backend::cpu_ref, double>;
  op::forward(t.ctx, t.cfg, t.p, t.k, t.x.v(), t.y.v());
  CHECK_THROWS_WITH_AS(t.align(t.ctx, t.cfg, t.p, t.k, t.probs.v(), 3, nullptr), doctest::Contains("heads"),
                       hyena::error);
}
