// layer_check.hpp: the two checks every layer gets.
//   check_layer_gradients: central differences in double on cpu_ref, for the input and
//                          every parameter tensor, against the layer's backward.
//   check_layer_parity:    the fast `cpu` backend against `cpu_ref` in float, outputs and
//                          all gradients, with outputs poisoned (NaN) beforehand.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <hyena/backend/backend.hpp>
#include <hyena/tensor/arena.hpp>
#include <hyena/tensor/random.hpp>

namespace hyena::testing {

// Everything one layer needs to run: params, grads, cache, input, output, gradients.
template <template <class, class> class L, class B, class T>
struct layer_rig {
  using layer = L<B, T>;
  typename layer::config cfg;
  index_t batch, seq;
  typename B::context ctx{};
  typename layer::params p, g;
  typename layer::cache k;
  arena<T> p_arena, g_arena, k_arena;
  tensor<T> x, y, dy, dx;

  layer_rig(const typename layer::config& c, index_t b, index_t s) : cfg(c), batch(b), seq(s) {
    p_arena.bind(p, cfg);
    g_arena.bind(g, cfg);
    k_arena.bind(k, cfg, batch, seq);
    x = tensor<T>(layer::input_shape(cfg, batch, seq));
    dx = tensor<T>(layer::input_shape(cfg, batch, seq));
    y = tensor<T>(layer::output_shape(cfg, batch, seq));
    dy = tensor<T>(layer::output_shape(cfg, batch, seq));
  }
  void forward() { layer::forward(ctx, cfg, p, k, x.v(), y.v()); }
  void backward() { layer::backward(ctx, cfg, p, k, dy.v(), dx.v(), g); }
};

// Initialises the layer, then nudges every parameter so no value is exactly zero.
template <class Rig>
void randomize(Rig& rig, std::uint64_t seed) {
  rng r(seed);
  Rig::layer::init(rig.cfg, rig.p, r);
  auto flat = rig.p_arena.flat();
  for (index_t i = 0; i < flat.numel(); ++i) flat.data[i] += static_cast<typename Rig::layer::tview::value_type>(r.normal(0, 0.05));
  fill_normal(rig.x.v(), r);
  fill_normal(rig.dy.v(), r);
}

inline bool close(double a, double b, double rtol, double atol) {
  return std::isfinite(a) && std::isfinite(b) && std::abs(a - b) <= atol + rtol * std::max(std::abs(a), std::abs(b));
}

// Compares analytic gradient entries against central differences of loss = sum(y * dy).
// `max_checks` entries of each tensor are probed (all of them when the tensor is small).
template <template <class, class> class L>
void check_layer_gradients(const typename L<backend::cpu_ref, double>::config& cfg, index_t batch, index_t seq,
                           std::uint64_t seed = 1, double rtol = 1e-5, double atol = 1e-8, index_t max_checks = 48,
                           double eps = 1e-6) {
  using B = backend::cpu_ref;
  layer_rig<L, B, double> rig(cfg, batch, seq);
  randomize(rig, seed);
  rig.forward();
  rig.backward();

  auto loss = [&] {
    rig.forward();
    double s = 0;
    for (index_t i = 0; i < rig.y.numel(); ++i) s += rig.y.data()[i] * rig.dy.data()[i];
    return s;
  };
  rng pick(seed + 99);
  auto probe = [&](const std::string& name, double* value, const double* analytic, index_t n) {
    index_t checks = std::min(n, max_checks);
    for (index_t c = 0; c < checks; ++c) {
      index_t i = n <= max_checks ? c : pick.below(n);
      double saved = value[i];
      value[i] = saved + eps;
      double up = loss();
      value[i] = saved - eps;
      double down = loss();
      value[i] = saved;
      double numeric = (up - down) / (2 * eps);
      INFO(name, "[", i, "]: analytic ", analytic[i], " numeric ", numeric);
      CHECK(close(analytic[i], numeric, rtol, atol));
    }
  };
  // dx is overwritten by nothing below, so copy analytic values first.
  std::vector<double> dx(rig.dx.data(), rig.dx.data() + rig.dx.numel());
  probe("input", rig.x.data(), dx.data(), rig.x.numel());

  std::vector<std::pair<std::string, view<double>>> grads;
  for_each_tensor<double>(rig.g, [&](const std::string& n, view<double>& v, const shape&) { grads.push_back({n, v}); }, cfg);
  std::size_t gi = 0;
  for_each_tensor<double>(rig.p, [&](const std::string& n, view<double>& v, const shape&) {
    probe(n, v.data, grads[gi++].second.data, v.numel());
  }, cfg);
}

// Runs cpu and cpu_ref on the same random float inputs and compares everything.
template <template <class, class> class L>
void check_layer_parity(const typename L<backend::cpu, float>::config& cfg, index_t batch, index_t seq,
                        std::uint64_t seed = 2, double rtol = 1e-4, double atol = 1e-5) {
  layer_rig<L, backend::cpu_ref, float> ref(cfg, batch, seq);
  layer_rig<L, backend::cpu, float> fast(cfg, batch, seq);
  randomize(ref, seed);
  auto copy = [](auto* dst, const auto* src, index_t n) { std::copy(src, src + n, dst); };
  copy(fast.p_arena.flat().data, ref.p_arena.flat().data, ref.p_arena.size());
  copy(fast.x.data(), ref.x.data(), ref.x.numel());
  copy(fast.dy.data(), ref.dy.data(), ref.dy.numel());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  fill_value(fast.y.v(), nan);
  fill_value(fast.dx.v(), nan);
  fill_value(ref.y.v(), nan);
  fill_value(ref.dx.v(), nan);
  ref.forward();
  fast.forward();
  ref.backward();
  fast.backward();

  auto compare = [&](const std::string& name, const float* a, const float* b, index_t n) {
    index_t bad = 0, first = -1;
    for (index_t i = 0; i < n; ++i)
      if (!close(a[i], b[i], rtol, atol)) {
        if (first < 0) first = i;
        ++bad;
      }
    INFO(name, ": ", bad, " of ", n, " differ; first at ", first, (first >= 0 ? " cpu=" + std::to_string(a[first]) + " ref=" + std::to_string(b[first]) : std::string()));
    CHECK(bad == 0);
  };
  compare("output", fast.y.data(), ref.y.data(), ref.y.numel());
  compare("input gradient", fast.dx.data(), ref.dx.data(), ref.dx.numel());
  std::vector<std::pair<std::string, view<float>>> gref;
  for_each_tensor<float>(ref.g, [&](const std::string& n, view<float>& v, const shape&) { gref.push_back({n, v}); }, cfg);
  std::size_t gi = 0;
  for_each_tensor<float>(fast.g, [&](const std::string& n, view<float>& v, const shape&) {
    compare("grad " + n, v.data, gref[gi++].second.data, v.numel());
  }, cfg);
}

}  // namespace hyena::testing
