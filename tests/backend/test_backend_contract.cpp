// The backend contract (backend/concept.hpp): the host backends meet every op group, a backend
// lacking one group fails exactly that group's concept, and the fused AdamW op of the cpu
// backend (threaded) agrees with cpu_ref's bit for bit.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu/cpu.hpp>

namespace hb = hyena::backend;
using hyena::index_t;

namespace {

// cpu_ref without its optimizer and fused-attention ops: a backend a layer could not train with.
struct incomplete : hb::ref_gemm_ops,
                    hb::ref_elementwise_ops,
                    hb::ref_norm_ops,
                    hb::ref_embedding_ops,
                    hb::ref_conv_ops,
                    hb::ref_filter_ops,
                    hb::ref_loss_ops,
                    hb::ref_alignment_ops,
                    hb::ref_decode_ops {
  using context = hb::host_context;
  using memory = hyena::host_memory;
  static constexpr const char* name = "incomplete";
};

}  // namespace

TEST_CASE("the host backends meet the whole contract; a missing group is named by its concept") {
  static_assert(hb::Backend<hb::cpu_ref>);
  static_assert(hb::Backend<hb::cpu>);
  static_assert(!hb::Backend<incomplete>);
  static_assert(hb::gemm_ops<incomplete, float> && hb::loss_ops<incomplete, double> && hb::decode_ops<incomplete, float>);
  static_assert(!hb::optimizer_ops<incomplete, float>);
  static_assert(!hb::attention_ops<incomplete, float>);  // no rotary, no fused causal attention
  static_assert(hb::memory_space<hyena::host_memory>);
  CHECK(std::string(hb::cpu::name) == "cpu");
}

TEST_CASE("adamw_step: cpu (threaded) == cpu_ref bit for bit, gradients untouched") {
  // Segments of 1, 3000 and 2^17 + 5 elements (above the threaded op's threshold).
  const std::vector<index_t> sizes{1, 3000, (index_t(1) << 17) + 5};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto make = [&](index_t n, float scale, bool positive) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = positive ? std::abs(normal(rng)) * scale + 1e-6f : normal(rng) * scale;
    return v;
  };
  std::vector<std::vector<float>> p, g, m, v;
  for (index_t n : sizes) {
    p.push_back(make(n, 1.0f, false));
    g.push_back(make(n, 0.1f, false));
    m.push_back(make(n, 0.01f, false));
    v.push_back(make(n, 0.001f, true));
  }
  auto p2 = p, m2 = m, v2 = v;
  const auto g_before = g, p_before = p;
  hb::adamw_hyper h{0.9, 0.95, 1e-8, 1 - std::pow(0.9, 4), std::sqrt(1 - std::pow(0.95, 4)), 0.6};
  std::vector<hb::adamw_segment<float>> a, b;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    const double lr = 2e-3 * double(k + 1), decay = 1 - lr * (k == 0 ? 0.0 : 0.1);
    a.push_back({p[k].data(), g[k].data(), m[k].data(), v[k].data(), sizes[k], lr, decay});
    b.push_back({p2[k].data(), g[k].data(), m2[k].data(), v2[k].data(), sizes[k], lr, decay});
  }
  hb::host_context serial(1), threaded(4);
  hb::cpu_ref::adamw_step(serial, a.data(), index_t(a.size()), h);
  hb::cpu::adamw_step(threaded, b.data(), index_t(b.size()), h);
  CHECK(p == p2);
  CHECK(m == m2);
  CHECK(v == v2);
  CHECK(g == g_before);
  // Nearly every parameter moved, so neither op skipped a piece (a few may not: weight decay and
  // the Adam step can cancel within one rounding).
  std::size_t unchanged = 0, total = 0;
  for (std::size_t k = 0; k < sizes.size(); ++k)
    for (std::size_t i = 0; i < p[k].size(); ++i, ++total) unchanged += p[k][i] == p_before[k][i];
  CHECK(unchanged * 1000 < total);
  CHECK(p[0][0] != p_before[0][0]);  // the one-element segment
}

TEST_CASE("adamw_step: one element against the formula (PyTorch's AdamW), with the clip factor") {
  float p = 0.5f, g = -0.2f, m = 0.01f, v = 0.002f;
  hb::adamw_segment<float> s{&p, &g, &m, &v, 1, 1e-2, 1 - 1e-2 * 0.1};
  const double bc1 = 1 - std::pow(0.9, 3), bc2 = std::sqrt(1 - std::pow(0.999, 3));
  hb::adamw_hyper h{0.9, 0.999, 1e-8, bc1, bc2, 0.5};
  hb::host_context ctx(1);
  hb::cpu_ref::adamw_step(ctx, &s, 1, h);
  const double gc = double(-0.2f * 0.5f);
  const double m_want = 0.9 * double(0.01f) + 0.1 * gc, v_want = 0.999 * double(0.002f) + 0.001 * gc * gc;
  const double p_want = double(0.5f) * (1 - 1e-3) - (1e-2 / bc1) * m_want / (std::sqrt(v_want) / bc2 + 1e-8);
  CHECK(m == doctest::Approx(m_want).epsilon(1e-7));
  CHECK(v == doctest::Approx(v_want).epsilon(1e-7));
  CHECK(p == doctest::Approx(p_want).epsilon(1e-7));
  CHECK(g == -0.2f);
}
