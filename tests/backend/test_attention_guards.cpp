// Guard-region checks of the attention ops, so that a one-off bug in a loop bound fails a test
// instead of corrupting the heap silently (issue 12's mutation spot-check: causal attention seeing
// one future key was caught only by heap corruption):
//  - fused causal attention runs with its per-thread scratch poisoned (NaN) and its inputs inside
//    NaN guard regions: reading a score or key it did not compute gives NaN, which the comparison
//    with cpu_ref reports; writing outside its output rows is seen in the guards;
//  - causality: outputs at positions <= t are bit-identical when every key and value after t changes;
//  - the rotary cos/sin table a context caches is keyed by the base too: one context serving two
//    models with different bases gives each its own rotation.
#include <doctest/doctest.h>

#include <cmath>
#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu/cpu.hpp>
#include <hyena/backend/cpu/fused_attention.hpp>
#include <hyena/tensor/random.hpp>
#include <limits>
#include <vector>

using namespace hyena;

namespace {

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();

std::vector<float> randn(index_t n, std::uint64_t seed) {
  rng r(seed);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<float>(r.normal(0, 1));
  return v;
}

// Fills every buffer of every worker of the fused attention's scratch with NaN.
void poison_scratch(backend::host_context& ctx) {
  auto& ws = ctx.state<backend::fused_attention_detail::workers<float>>();
  for (auto& w : ws.all)
    for (auto* v : {&w.s, &w.ds, &w.k_t, &w.v_t, &w.k_rows, &w.v_rows, &w.small, &w.apack})
      std::fill(v->begin(), v->end(), nan_f);
}

struct shape_case {
  index_t batch, seq, heads, kv_heads, head_dim;
};

}  // namespace

TEST_CASE("fused causal attention: poisoned scratch and NaN guard regions, cpu equals cpu_ref") {
  for (const shape_case a : {shape_case{1, 5, 2, 2, 8}, shape_case{2, 64, 2, 1, 16}, shape_case{1, 70, 4, 2, 8},
                             shape_case{1, 130, 1, 1, 32}}) {
    CAPTURE(a.seq);
    const index_t D = a.head_dim, Q = (a.heads + 2 * a.kv_heads) * D, O = a.heads * D, rows = a.batch * a.seq;
    const index_t guard = 64;
    // qkv and out live inside larger buffers whose guard regions hold NaN.
    std::vector<float> qkv_buf(static_cast<std::size_t>(rows * Q + 2 * guard), nan_f);
    const auto qkv = randn(rows * Q, 5 + a.seq);
    std::copy(qkv.begin(), qkv.end(), qkv_buf.begin() + guard);
    std::vector<float> out_buf(static_cast<std::size_t>(rows * O + 2 * guard), nan_f), out_ref(rows * O);
    std::vector<float> lse(a.batch * a.heads * a.seq), lse_ref(lse.size());
    const float scale = 1.0f / std::sqrt(float(D));
    backend::host_context ref_ctx(1), ctx(1);
    backend::cpu_ref::causal_attention_forward(ref_ctx, a.batch, a.seq, a.heads, a.kv_heads, D, scale, qkv.data(), Q,
                                               out_ref.data(), O, lse_ref.data());
    // Once to size the scratch, then again with the scratch poisoned.
    backend::cpu::causal_attention_forward(ctx, a.batch, a.seq, a.heads, a.kv_heads, D, scale, qkv_buf.data() + guard,
                                           Q, out_buf.data() + guard, O, lse.data());
    poison_scratch(ctx);
    std::fill(out_buf.begin() + guard, out_buf.end() - guard, nan_f);
    backend::cpu::causal_attention_forward(ctx, a.batch, a.seq, a.heads, a.kv_heads, D, scale, qkv_buf.data() + guard,
                                           Q, out_buf.data() + guard, O, lse.data());
    int bad = 0, guard_touched = 0;
    for (index_t i = 0; i < rows * O; ++i) {
      const float got = out_buf[static_cast<std::size_t>(guard + i)], want = out_ref[static_cast<std::size_t>(i)];
      bad += !(std::isfinite(got) && std::abs(got - want) <= 2e-5f * (1 + std::abs(want)));
    }
    for (index_t i = 0; i < guard; ++i) {
      guard_touched += !std::isnan(out_buf[static_cast<std::size_t>(i)]);
      guard_touched += !std::isnan(out_buf[out_buf.size() - 1 - static_cast<std::size_t>(i)]);
    }
    CHECK(bad == 0);
    CHECK(guard_touched == 0);
    for (std::size_t i = 0; i < lse.size(); ++i) CHECK(std::abs(lse[i] - lse_ref[i]) <= 2e-5f * (1 + std::abs(lse_ref[i])));
  }
}

TEST_CASE("fused causal attention: outputs up to t do not change when keys and values after t do") {
  const index_t seq = 67, heads = 2, kv = 1, D = 8, Q = (heads + 2 * kv) * D, O = heads * D;
  const float scale = 0.35f;
  for (auto run_backend : {0, 1}) {
    CAPTURE(run_backend);
    for (index_t t : {index_t(0), index_t(31), index_t(63), index_t(64), seq - 2}) {
      CAPTURE(t);
      auto qkv = randn(seq * Q, 17);
      std::vector<float> a(seq * O), b(seq * O), lse(heads * seq);
      backend::host_context ctx(1);
      auto run = [&](std::vector<float>& out) {
        if (run_backend)
          backend::cpu::causal_attention_forward(ctx, 1, seq, heads, kv, D, scale, qkv.data(), Q, out.data(), O,
                                                 lse.data());
        else
          backend::cpu_ref::causal_attention_forward(ctx, 1, seq, heads, kv, D, scale, qkv.data(), Q, out.data(), O,
                                                     lse.data());
      };
      run(a);
      for (index_t p = t + 1; p < seq; ++p)  // keys and values of later positions: huge
        for (index_t i = heads * D; i < Q; ++i) qkv[static_cast<std::size_t>(p * Q + i)] = 1e3f * float(i % 7 + 1);
      run(b);
      int changed = 0;
      for (index_t i = 0; i < (t + 1) * O; ++i) changed += a[static_cast<std::size_t>(i)] != b[static_cast<std::size_t>(i)];
      CHECK(changed == 0);
    }
  }
}

TEST_CASE("rotary table: one context serving two bases rotates each by its own base") {
  const index_t seq = 9, heads = 2, D = 8, rot = 8;
  auto x0 = randn(seq * heads * D, 3);
  for (double first : {10000.0, 500.0}) {
    const double second = first == 10000.0 ? 500.0 : 10000.0;
    backend::host_context shared(1);
    auto a = x0, b = x0, want = x0;
    backend::cpu::rotary_forward(shared, 1, seq, heads, D, heads * D, rot, first, a.data());
    backend::cpu::rotary_forward(shared, 1, seq, heads, D, heads * D, rot, second, b.data());  // same context
    backend::host_context fresh(1);
    backend::cpu_ref::rotary_forward(fresh, 1, seq, heads, D, heads * D, rot, second, want.data());
    double worst = 0, moved = 0;
    for (std::size_t i = 0; i < b.size(); ++i) worst = std::max(worst, double(std::abs(b[i] - want[i])));
    for (std::size_t i = 0; i < b.size(); ++i) moved = std::max(moved, double(std::abs(a[i] - b[i])));
    CHECK(worst < 1e-5);
    CHECK(moved > 1e-2);  // the two bases really rotate differently
  }
}
