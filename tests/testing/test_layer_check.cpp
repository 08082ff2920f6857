// The installed layer checker (hyena/testing/layer_check.hpp) passes a correct mixer and reports
// each deliberate break of the layer contract with its own message.
#include <hyena/testing/layer_check.hpp>

#include <doctest/doctest.h>

#include <string>
#include <type_traits>

#include "../../examples/ema_mixer.hpp"

using namespace hyena;

namespace {

enum class flaw { none, unchecked_dx, overwrite_grads, accumulate_dx, past_cache, wrong_gradient, cpu_differs };

struct toy_config {
  index_t hidden = 0;
  static toy_config from(const model_config& m) { return {m.hidden}; }
};

// y = w ⊙ x + b per channel, keeping a copy of x in its cache; F picks one mistake.
template <class B, class T, flaw F>
struct toy_mixer {
  using config = toy_config;
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;

  struct params {
    tview w, b;  // (hidden)
    template <class W>
    void visit(W&& walk, const config& c) {
      walk("w", w, {c.hidden});
      walk("b", b, {c.hidden});
    }
  };
  struct cache {
    tview xs;  // (batch, seq, hidden)
    template <class W>
    void visit(W&& walk, const config& c, index_t batch, index_t seq) {
      walk("xs", xs, {batch, seq, c.hidden});
    }
  };
  static shape input_shape(const config& c, index_t b, index_t s) { return {b, s, c.hidden}; }
  static shape output_shape(const config& c, index_t b, index_t s) { return {b, s, c.hidden}; }
  static void init(const config&, params& p, rng& r) {
    fill_normal(p.w, r);
    fill_normal(p.b, r);
  }
  static void forward(context&, const config& c, const params& p, cache& k, ctview x, tview y) {
    const index_t n = x.numel();
    for (index_t i = 0; i < n; ++i) {
      k.xs.data[i] = x.data[i];
      y.data[i] = p.w.data[i % c.hidden] * x.data[i] + p.b.data[i % c.hidden];
      if constexpr (F == flaw::cpu_differs && std::is_same_v<B, backend::cpu>) y.data[i] += T(1e-2);
    }
    if constexpr (F == flaw::past_cache) k.xs.data[n] = T(0);  // one element past its cache
  }
  static void backward(context&, const config& c, const params& p, cache& k, ctview dy, tview dx, params& g) {
    for (index_t i = 0; i < dy.numel(); ++i) {
      const index_t ch = i % c.hidden;
      const T scale = F == flaw::wrong_gradient ? T(2) : T(1);
      if constexpr (F == flaw::overwrite_grads) {
        if (i < c.hidden) g.w.data[ch] = T(0), g.b.data[ch] = T(0);  // "clears" what was there
      }
      g.w.data[ch] += scale * k.xs.data[i] * dy.data[i];
      g.b.data[ch] += dy.data[i];
      if constexpr (F == flaw::unchecked_dx) {
        dx.data[i] = p.w.data[ch] * dy.data[i];
      } else if constexpr (F == flaw::accumulate_dx) {
        if (!dx.empty()) dx.data[i] += p.w.data[ch] * dy.data[i];
      } else {
        if (!dx.empty()) dx.data[i] = p.w.data[ch] * dy.data[i];
      }
    }
  }
};

template <class B, class T>
using good_mixer = toy_mixer<B, T, flaw::none>;
template <class B, class T>
using unchecked_dx_mixer = toy_mixer<B, T, flaw::unchecked_dx>;
template <class B, class T>
using overwrite_grads_mixer = toy_mixer<B, T, flaw::overwrite_grads>;
template <class B, class T>
using accumulate_dx_mixer = toy_mixer<B, T, flaw::accumulate_dx>;
template <class B, class T>
using past_cache_mixer = toy_mixer<B, T, flaw::past_cache>;
template <class B, class T>
using wrong_gradient_mixer = toy_mixer<B, T, flaw::wrong_gradient>;
template <class B, class T>
using cpu_differs_mixer = toy_mixer<B, T, flaw::cpu_differs>;

// True when some failure line of `r` contains `text`.
bool reports(const testing::check_report& r, const std::string& text) {
  for (const auto& f : r.failures)
    if (f.find(text) != std::string::npos) return true;
  return false;
}

const toy_config cfg{.hidden = 5};

}  // namespace

static_assert(nn::mixer<good_mixer<backend::cpu, float>>);

TEST_CASE("layer check: a correct mixer and the example mixer pass every check") {
  auto r = testing::layer_check<good_mixer>(cfg, 2, 3);
  INFO(r.str());
  CHECK(r.ok());
  CHECK(r.str() == "layer check: ok");
  auto e = testing::layer_check<example::ema_mixer>({.hidden = 6}, 2, 5);
  INFO(e.str());
  CHECK(e.ok());
}

TEST_CASE("layer check: a backward that writes to an empty dx is reported, and the caller survives") {
  auto r = testing::contract_check<unchecked_dx_mixer>(cfg, 2, 3);
  INFO(r.str());
  CHECK(r.failures.size() == 1);
  CHECK(reports(r, "backward wrote to an empty dx (or crashed): it must test dx.empty()"));
  // With a real dx the same mixer is right: the gradients agree.
  CHECK(testing::gradient_check<unchecked_dx_mixer>(cfg, 2, 3).ok());
}

TEST_CASE("layer check: gradients that are overwritten, not accumulated, are reported") {
  auto r = testing::contract_check<overwrite_grads_mixer>(cfg, 2, 3);
  INFO(r.str());
  CHECK(reports(r, "gradient of w: backward twice did not give twice the gradient"));
  CHECK(reports(r, "gradient of b:"));
  CHECK(reports(r, "must accumulate (+=)"));
  CHECK(testing::gradient_check<overwrite_grads_mixer>(cfg, 2, 3).ok());  // one backward alone looks right
}

TEST_CASE("layer check: an accumulated dx is reported") {
  auto r = testing::contract_check<accumulate_dx_mixer>(cfg, 2, 3);
  INFO(r.str());
  CHECK(r.failures.size() == 1);
  CHECK(reports(r, "the input gradient must be assigned, not accumulated"));
}

TEST_CASE("layer check: a write past the cache is reported") {
  auto r = testing::contract_check<past_cache_mixer>(cfg, 2, 3);
  INFO(r.str());
  CHECK(r.failures.size() == 1);
  CHECK(reports(r, "wrote outside the cache (after xs)"));
}

TEST_CASE("layer check: wrong gradients and a backend mismatch are reported") {
  auto g = testing::gradient_check<wrong_gradient_mixer>(cfg, 2, 3);
  INFO(g.str());
  CHECK(g.failures.size() == 1);
  CHECK(reports(g, "gradient of w: "));
  auto p = testing::parity_check<cpu_differs_mixer>(cfg, 2, 3);
  INFO(p.str());
  CHECK(p.failures.size() == 1);
  CHECK(reports(p, "cpu vs cpu_ref, output: 30 of 30 differ"));
  auto all = testing::layer_check<wrong_gradient_mixer>(cfg, 2, 3);
  CHECK(!all.ok());
  CHECK(all.str().rfind("layer check: 1 failure(s)\n  gradient of w", 0) == 0);
}

TEST_CASE("layer check: guarded buffers see writes on either side") {
  testing::guarded_tensor<float> t(shape{2, 3}, "t");
  CHECK(t.guards_intact());
  t.data()[5] = 1;  // inside
  CHECK(t.guards_intact());
  t.data()[6] = 1;  // just past the end
  CHECK(!t.guards_intact());
  testing::guarded_tensor<double> u(shape{4}, "u");
  u.data()[-1] = 1;  // just before the start
  CHECK(!u.guards_intact());
}
