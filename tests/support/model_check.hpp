// model_check.hpp: whole-model checks (gradients in double, cpu vs cpu_ref parity).
#pragma once
#include <doctest/doctest.h>

#include <vector>

#include <hyena/models/causal_lm.hpp>

#include "layer_check.hpp"

namespace hyena::testing {

// Random token ids in [0, vocab).
inline tensor<std::int32_t> random_tokens(index_t batch, index_t seq, index_t vocab, std::uint64_t seed) {
  rng r(seed);
  tensor<std::int32_t> t({batch, seq});
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<std::int32_t>(r.below(vocab));
  return t;
}

// Perturbs every parameter a little so that no weight sits at an exact init value.
template <class Model>
void nudge_parameters(Model& m, std::uint64_t seed, double std = 0.05) {
  rng r(seed);
  auto flat = m.parameter_arena().flat();
  for (index_t i = 0; i < flat.numel(); ++i) flat.data[i] += static_cast<typename Model::scalar>(r.normal(0, std));
}

// Central differences of loss = sum(logits * r) [+ sum(mixer_out[0] * q) through a hook]
// against backward, for up to `probes` entries of every parameter tensor.
template <class Model>
void check_model_gradients(const typename Model::config_type& c, index_t batch, index_t seq, bool with_hook = false,
                           index_t probes = 4, double rtol = 1e-5, double atol = 1e-8, double eps = 1e-6) {
  static_assert(std::is_same_v<typename Model::scalar, double>);
  Model m(c);
  rng r(11);
  m.init(r);
  nudge_parameters(m, 12);
  auto tokens = random_tokens(batch, seq, c.vocab, 13);
  tensor<double> weights({batch, seq, c.vocab}), q({batch, seq, c.hidden});
  fill_normal(weights.v(), r);
  fill_normal(q.v(), r);
  typename Model::context ctx;
  m.reserve(batch, seq, models::mode::train);

  models::hooks<double> h;
  h.on_backward = [&](index_t layer, models::hook_point p, view<double> g) {
    if (layer == 0 && p == models::hook_point::mixer_output)
      for (index_t i = 0; i < g.numel(); ++i) g.data[i] += q.data()[i];
  };
  auto loss = [&] {
    auto logits = m.forward(ctx, tokens.v());
    double s = 0;
    for (index_t i = 0; i < logits.numel(); ++i) s += logits.data[i] * weights.data()[i];
    if (with_hook) {
      auto mo = m.activation(0, models::hook_point::mixer_output);
      for (index_t i = 0; i < mo.numel(); ++i) s += mo.data[i] * q.data()[i];
    }
    return s;
  };
  loss();
  std::copy(weights.data(), weights.data() + weights.numel(), m.dlogits().data);
  m.zero_grad();
  m.backward(ctx, with_hook ? &h : nullptr);

  rng pick(5);
  index_t checked = 0;
  m.for_each_parameter([&](const std::string& name, view<double>& p, view<double>& g) {
    for (index_t c2 = 0; c2 < std::min(probes, p.numel()); ++c2) {
      index_t i = pick.below(p.numel());
      double saved = p.data[i];
      p.data[i] = saved + eps;
      double up = loss();
      p.data[i] = saved - eps;
      double down = loss();
      p.data[i] = saved;
      double numeric = (up - down) / (2 * eps);
      INFO(name, "[", i, "]: analytic ", g.data[i], " numeric ", numeric);
      CHECK(close(g.data[i], numeric, rtol, atol));
      ++checked;
    }
  });
  CHECK(checked > 0);
}

// Logits and every gradient of the `cpu` model match the `cpu_ref` model (float).
template <class FastModel, class RefModel>
void check_model_parity(const typename FastModel::config_type& c, index_t batch, index_t seq, double rtol = 2e-4,
                        double atol = 2e-5) {
  FastModel fast(c);
  RefModel ref(c);
  rng r(21);
  ref.init(r);
  nudge_parameters(ref, 22);
  std::copy(ref.parameter_arena().flat().data, ref.parameter_arena().flat().data + ref.parameter_arena().size(),
            fast.parameter_arena().flat().data);
  auto tokens = random_tokens(batch, seq, c.vocab, 23);
  typename FastModel::context fctx;
  typename RefModel::context rctx;
  fast.reserve(batch, seq, models::mode::train);
  ref.reserve(batch, seq, models::mode::train);
  auto lf = fast.forward(fctx, tokens.v());
  auto lr = ref.forward(rctx, tokens.v());
  index_t bad = 0;
  for (index_t i = 0; i < lr.numel(); ++i) bad += !close(lf.data[i], lr.data[i], rtol, atol);
  CHECK(bad == 0);
  fill_normal(ref.dlogits(), r);
  std::copy(ref.dlogits().data, ref.dlogits().data + ref.dlogits().numel(), fast.dlogits().data);
  fast.zero_grad();
  ref.zero_grad();
  fast.backward(fctx);
  ref.backward(rctx);
  std::vector<std::pair<std::string, view<float>>> rg;
  ref.for_each_parameter([&](const std::string& n, view<float>&, view<float>& g) { rg.push_back({n, g}); });
  std::size_t k = 0;
  fast.for_each_parameter([&](const std::string& n, view<float>&, view<float>& g) {
    auto& other = rg[k++].second;
    index_t diff = 0;
    for (index_t i = 0; i < g.numel(); ++i) diff += !close(g.data[i], other.data[i], rtol, atol);
    INFO("gradient of ", n, ": ", diff, " entries differ");
    CHECK(diff == 0);
  });
}

}  // namespace hyena::testing
