// The attention op group on raw buffers: strided rotary, the causal softmax and the fused
// causal attention core (cpu blocked against the cpu_ref loops, and against the composition
// of gemm + causal softmax).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu/cpu.hpp>
#include <hyena/tensor/random.hpp>

using namespace hyena;

namespace {

template <class T>
std::vector<T> randn(index_t n, std::uint64_t seed, double std = 1.0) {
  rng r(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(r.normal(0, std));
  return v;
}

bool close(double a, double b, double rtol, double atol) {
  return std::isfinite(a) && std::isfinite(b) && std::abs(a - b) <= atol + rtol * std::max(std::abs(a), std::abs(b));
}

}  // namespace

TEST_CASE("rotary ops: strided rows, cpu matches cpu_ref, padding and pass-through dims untouched") {
  // Like attention's fused qkv rows: 3 rotated heads of 64, then 21 other values per row.
  const index_t heads = 3, hd = 64, rot = 48, stride = heads * hd + 21, batch = 2;
  backend::host_context fast_ctx;  // reused across calls: its cos/sin table grows and is reused
  backend::host_context ref_ctx;
  for (index_t seq : {4, 9, 3, 9}) {
    auto x = randn<float>(batch * seq * stride, seq);
    auto ref = x, fast = x;
    backend::cpu_ref::rotary_forward(ref_ctx, batch, seq, heads, hd, stride, rot, 10000.0, ref.data());
    backend::cpu::rotary_forward(fast_ctx, batch, seq, heads, hd, stride, rot, 10000.0, fast.data());
    index_t changed = 0;
    for (index_t i = 0; i < static_cast<index_t>(x.size()); ++i) {
      index_t col = i % stride;
      bool rotated = col < heads * hd && col % hd < rot;
      INFO("seq ", seq, " index ", i);
      CHECK(close(fast[i], ref[i], 1e-5, 1e-6));
      if (!rotated) CHECK(fast[i] == x[i]);
      if (!rotated) CHECK(ref[i] == x[i]);
      changed += rotated && fast[i] != x[i];
    }
    CHECK(changed > 0);
    backend::cpu::rotary_backward(fast_ctx, batch, seq, heads, hd, stride, rot, 10000.0, fast.data());
    backend::cpu_ref::rotary_backward(ref_ctx, batch, seq, heads, hd, stride, rot, 10000.0, ref.data());
    for (std::size_t i = 0; i < x.size(); ++i) {
      CHECK(close(fast[i], x[i], 1e-5, 1e-6));
      CHECK(close(ref[i], x[i], 1e-5, 1e-6));
    }
  }
}

TEST_CASE("rotary ops: long sequences keep float accuracy (angles in double)") {
  const index_t seq = 4096, hd = 8;
  auto x = randn<float>(seq * hd, 3);
  auto fast = x;
  std::vector<double> ref(x.begin(), x.end());
  backend::host_context ctx;
  backend::cpu::rotary_forward(ctx, 1, seq, 1, hd, hd, hd, 10000.0, fast.data());
  backend::cpu_ref::rotary_forward(ctx, 1, seq, 1, hd, hd, hd, 10000.0, ref.data());
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(close(fast[i], ref[i], 1e-5, 1e-5));
}

TEST_CASE("rotary ops: bad rot_dims or stride throw hyena::error") {
  std::vector<float> x(64);
  backend::host_context ctx;
  CHECK_THROWS_AS(backend::cpu::rotary_forward(ctx, 1, 2, 2, 16, 32, 5, 1e4, x.data()), hyena::error);
  CHECK_THROWS_AS(backend::cpu_ref::rotary_forward(ctx, 1, 2, 2, 16, 32, 18, 1e4, x.data()), hyena::error);
  CHECK_THROWS_AS(backend::cpu::rotary_backward(ctx, 1, 2, 2, 16, 31, 4, 1e4, x.data()), hyena::error);
}

TEST_CASE("causal softmax: known values, zero above the diagonal, stable for large scores") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> s = {1, 9, 9, 0, 2, 9, 1000, 1000, 999};
  backend::host_context ctx;
  auto check = [&](const std::vector<float>& p) {
    CHECK(p[0] == doctest::Approx(1.0));
    CHECK(p[1] == 0.0f);
    CHECK(p[2] == 0.0f);
    // row 1: softmax(0.5 * [0, 2]) = [1, e] / (1 + e)
    CHECK(p[3] == doctest::Approx(1 / (1 + std::exp(1.0))));
    CHECK(p[4] == doctest::Approx(std::exp(1.0) / (1 + std::exp(1.0))));
    CHECK(p[5] == 0.0f);
    // row 2: softmax(0.5 * [1000, 1000, 999]) with no overflow
    double e = std::exp(-0.5);
    CHECK(p[6] == doctest::Approx(1 / (2 + e)));
    CHECK(p[7] == doctest::Approx(1 / (2 + e)));
    CHECK(p[8] == doctest::Approx(e / (2 + e)));
  };
  std::vector<float> p(9, nan);
  backend::cpu_ref::causal_softmax_forward(ctx, 1, 3, 0.5f, s.data(), p.data());
  check(p);
  std::fill(p.begin(), p.end(), nan);
  backend::cpu::causal_softmax_forward(ctx, 1, 3, 0.5f, s.data(), p.data());
  check(p);
  auto inplace = s;  // probs may alias scores
  backend::cpu::causal_softmax_forward(ctx, 1, 3, 0.5f, inplace.data(), inplace.data());
  check(inplace);
}

TEST_CASE("causal softmax: cpu matches cpu_ref on long rows, forward and backward") {
  for (index_t seq : {1, 7, 70}) {
    const index_t batches = 3, n = batches * seq * seq;
    auto s = randn<float>(n, 11 + seq, 3.0), dp = randn<float>(n, 12 + seq);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> p_ref(n, nan), p_fast(n, nan), ds_ref(n, nan), ds_fast(n, nan);
    backend::host_context ctx;
    backend::cpu_ref::causal_softmax_forward(ctx, batches, seq, 0.3f, s.data(), p_ref.data());
    backend::cpu::causal_softmax_forward(ctx, batches, seq, 0.3f, s.data(), p_fast.data());
    backend::cpu_ref::causal_softmax_backward(ctx, batches, seq, 0.3f, p_ref.data(), dp.data(), ds_ref.data());
    backend::cpu::causal_softmax_backward(ctx, batches, seq, 0.3f, p_ref.data(), dp.data(), ds_fast.data());
    for (index_t i = 0; i < n; ++i) {
      INFO("seq ", seq, " index ", i);
      CHECK(close(p_fast[i], p_ref[i], 1e-5, 1e-7));
      CHECK(close(ds_fast[i], ds_ref[i], 1e-4, 1e-6));
    }
    for (index_t r = 0; r < batches * seq; ++r) {  // rows sum to one
      double sum = 0;
      for (index_t j = 0; j < seq; ++j) sum += p_fast[r * seq + j];
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
    }
    auto inplace = dp;  // dscores may alias dprobs
    backend::cpu::causal_softmax_backward(ctx, batches, seq, 0.3f, p_ref.data(), inplace.data(), inplace.data());
    for (index_t i = 0; i < n; ++i) CHECK(inplace[i] == ds_fast[i]);
  }
}

TEST_CASE("causal softmax: backward matches central differences (double)") {
  const index_t batches = 2, seq = 5, n = batches * seq * seq;
  const double scale = 0.7, eps = 1e-6;
  auto s = randn<double>(n, 21), w = randn<double>(n, 22);
  backend::host_context ctx;
  std::vector<double> p(n), ds(n);
  auto loss = [&] {
    backend::cpu_ref::causal_softmax_forward(ctx, batches, seq, scale, s.data(), p.data());
    double l = 0;
    for (index_t i = 0; i < n; ++i) l += p[i] * w[i];
    return l;
  };
  loss();
  backend::cpu_ref::causal_softmax_backward(ctx, batches, seq, scale, p.data(), w.data(), ds.data());
  for (index_t i = 0; i < n; ++i) {
    double saved = s[i];
    s[i] = saved + eps;
    double up = loss();
    s[i] = saved - eps;
    double down = loss();
    s[i] = saved;
    INFO("index ", i);
    CHECK(close(ds[i], (up - down) / (2 * eps), 1e-6, 1e-9));
  }
}

namespace {

struct attention_case {
  index_t batch, seq, heads, kv_heads, head_dim, row_pad;
};

// The fused core's forward and backward on cpu_ref (one thread) and on cpu (two threads, products
// at `precision`), outputs poisoned first: (rows, O) outputs, (rows, Q) input gradients.
template <class T>
struct fused_runs {
  index_t rows, Q, O;
  std::vector<T> out_ref, out_fast, lse_ref, lse_fast, d_ref, d_fast;
};

template <class T>
fused_runs<T> run_fused_attention(const attention_case& a,
                                  backend::matmul_precision precision = backend::matmul_precision::highest) {
  const index_t D = a.head_dim, Q = (a.heads + 2 * a.kv_heads) * D + a.row_pad, O = a.heads * D + a.row_pad;
  const index_t rows = a.batch * a.seq, lses = a.batch * a.heads * a.seq;
  const T scale = T(1.0 / std::sqrt(double(D)));
  auto qkv = randn<T>(rows * Q, a.seq * 31 + a.heads);
  auto dout = randn<T>(rows * O, a.seq * 37 + 1);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  fused_runs<T> r{rows, Q, O, std::vector<T>(rows * O, nan), std::vector<T>(rows * O, nan), std::vector<T>(lses, nan),
                  std::vector<T>(lses, nan), std::vector<T>(rows * Q, nan), std::vector<T>(rows * Q, nan)};
  backend::host_context ref_ctx(1), ctx(2);
  ctx.set_float32_matmul_precision(precision);
  backend::cpu_ref::causal_attention_forward(ref_ctx, a.batch, a.seq, a.heads, a.kv_heads, D, scale, qkv.data(), Q,
                                             r.out_ref.data(), O, r.lse_ref.data());
  backend::cpu::causal_attention_forward(ctx, a.batch, a.seq, a.heads, a.kv_heads, D, scale, qkv.data(), Q,
                                         r.out_fast.data(), O, r.lse_fast.data());
  backend::cpu_ref::causal_attention_backward(ref_ctx, a.batch, a.seq, a.heads, a.kv_heads, D, scale, qkv.data(), Q,
                                              r.out_ref.data(), dout.data(), O, r.lse_ref.data(), r.d_ref.data());
  backend::cpu::causal_attention_backward(ctx, a.batch, a.seq, a.heads, a.kv_heads, D, scale, qkv.data(), Q,
                                          r.out_fast.data(), dout.data(), O, r.lse_fast.data(), r.d_fast.data());
  return r;
}

// cpu against cpu_ref entry by entry, and the padding of every row untouched.
template <class T>
void check_fused_attention(const attention_case& a, double rtol) {
  const auto [rows, Q, O, out_ref, out_fast, lse_ref, lse_fast, d_ref, d_fast] = run_fused_attention<T>(a);
  const index_t D = a.head_dim;
  INFO("batch ", a.batch, " seq ", a.seq, " heads ", a.heads, "/", a.kv_heads, " head_dim ", D, " pad ", a.row_pad);
  int bad_out = 0, bad_lse = 0, bad_grad = 0, touched_pad = 0;
  for (index_t r = 0; r < rows; ++r)
    for (index_t i = 0; i < O; ++i) {
      if (i >= a.heads * D) touched_pad += !std::isnan(out_fast[r * O + i]);
      else bad_out += !close(out_fast[r * O + i], out_ref[r * O + i], rtol, rtol);
    }
  for (std::size_t i = 0; i < lse_ref.size(); ++i) bad_lse += !close(lse_fast[i], lse_ref[i], rtol, rtol);
  for (index_t r = 0; r < rows; ++r)
    for (index_t i = 0; i < Q; ++i) {
      if (i >= Q - a.row_pad) touched_pad += !std::isnan(d_fast[r * Q + i]);
      else bad_grad += !close(d_fast[r * Q + i], d_ref[r * Q + i], rtol, 10 * rtol);
    }
  CHECK(bad_out == 0);
  CHECK(bad_lse == 0);
  CHECK(bad_grad == 0);
  CHECK(touched_pad == 0);
}

}  // namespace

TEST_CASE("fused causal attention: cpu matches cpu_ref, forward and backward, MHA and GQA, block edges") {
  for (index_t seq : {1, 7, 63, 64, 65, 150})
    check_fused_attention<float>({2, seq, 4, 4, 32, 0}, 2e-5);
  check_fused_attention<float>({1, 130, 4, 2, 16, 5}, 2e-5);   // GQA, padded rows
  check_fused_attention<float>({3, 70, 6, 1, 40, 3}, 2e-5);    // one kv head; head_dim over one panel
  check_fused_attention<double>({2, 100, 2, 1, 24, 1}, 1e-11);
  // Rows longer than attention_detail::sum_block (1024): the softmax's sum of exponentials
  // crosses its fp32 blocks, and rows end at every offset within a vector.
  check_fused_attention<float>({1, 1100, 1, 1, 8, 0}, 2e-5);
  check_fused_attention<double>({1, 1041, 1, 1, 8, 0}, 1e-11);
}

namespace {

// ||x - y|| / ||y|| over the entries of rows x cols buffers (row stride ld) in the first `cols` columns.
double relative_l2(const std::vector<float>& x, const std::vector<float>& y, index_t rows, index_t cols, index_t ld) {
  double num = 0, den = 0;
  for (index_t r = 0; r < rows; ++r)
    for (index_t i = 0; i < cols; ++i) {
      const double d = double(x[r * ld + i]) - y[r * ld + i];
      num += d * d, den += double(y[r * ld + i]) * y[r * ld + i];
    }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("fused causal attention under matmul_precision::medium: bf16 products, fp32 softmax, close to cpu_ref") {
  for (const attention_case a : {attention_case{2, 150, 4, 4, 32, 0}, attention_case{1, 67, 4, 2, 16, 5},
                                 attention_case{1, 9, 2, 1, 40, 3}}) {
    const auto r = run_fused_attention<float>(a, backend::matmul_precision::medium);
    const index_t D = a.head_dim;
    const double e_out = relative_l2(r.out_fast, r.out_ref, r.rows, a.heads * D, r.O),
                 e_grad = relative_l2(r.d_fast, r.d_ref, r.rows, r.Q - a.row_pad, r.Q);
    INFO("seq ", a.seq, " heads ", a.heads, "/", a.kv_heads, " head_dim ", D, ": relative error out ", e_out,
         " gradients ", e_grad);
    CHECK(e_out < 1e-2);  // bf16 inputs: about 2^-9 relative each
    CHECK(e_grad < 2e-2);
#if HYENA_HAS_BF16_PRODUCT
    CHECK(e_out > 1e-4);  // rounded: not the fp32 path
#endif
    int touched_pad = 0;
    for (index_t row = 0; row < r.rows; ++row) {
      for (index_t i = a.heads * D; i < r.O; ++i) touched_pad += !std::isnan(r.out_fast[row * r.O + i]);
      for (index_t i = r.Q - a.row_pad; i < r.Q; ++i) touched_pad += !std::isnan(r.d_fast[row * r.Q + i]);
    }
    CHECK(touched_pad == 0);
  }
}

TEST_CASE("fused causal attention: equals scores -> causal softmax -> P v through the other ops") {
  const index_t seq = 50, D = 16, Q = 3 * D;
  const float scale = 0.25f;
  auto qkv = randn<float>(seq * Q, 11);
  std::vector<float> s(seq * seq), out(seq * D), want(seq * D), lse(seq);
  backend::host_context ctx(1);
  using R = backend::cpu_ref;
  R::gemm(ctx, false, true, seq, seq, D, 1.0f, qkv.data(), Q, qkv.data() + D, Q, 0.0f, s.data(), seq);
  R::causal_softmax_forward(ctx, 1, seq, scale, s.data(), s.data());
  R::gemm(ctx, false, false, seq, D, seq, 1.0f, s.data(), seq, qkv.data() + 2 * D, Q, 0.0f, want.data(), D);
  backend::cpu::causal_attention_forward(ctx, 1, seq, 1, 1, D, scale, qkv.data(), Q, out.data(), D, lse.data());
  for (index_t i = 0; i < seq * D; ++i) CHECK(close(out[i], want[i], 1e-5, 1e-6));
  CHECK(close(lse[0], scale * [&] { double d = 0; for (index_t i = 0; i < D; ++i) d += double(qkv[i]) * qkv[D + i]; return d; }(), 1e-5, 1e-6));
}

TEST_CASE("fused causal attention: bad sizes throw hyena::error") {
  backend::host_context ctx(1);
  std::vector<float> buf(4096);
  CHECK_THROWS_AS(backend::cpu::causal_attention_forward(ctx, 1, 4, 3, 2, 8, 1.0f, buf.data(), 56, buf.data(), 24,
                                                         buf.data()), hyena::error);
  CHECK_THROWS_AS(backend::cpu::causal_attention_forward(ctx, 1, 4, 2, 2, 8, 1.0f, buf.data(), 40, buf.data(), 16,
                                                         buf.data()), hyena::error);
}
