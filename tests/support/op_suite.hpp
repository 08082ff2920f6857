// op_suite.hpp: every op of the backend contract (backend/concept.hpp) run on a backend B and
// compared with cpu_ref's, written once and run on every backend (one runner per backend:
// backend/test_op_suite.cpp for cpu and offhost, cuda/test_cuda_ops.cu for cuda).
//
// How one comparison runs: the inputs are drawn on the host (uniform in +-[0.05, 1] * scale,
// drawn in double and cast: never zero), uploaded with B::memory::to_device; an output the op
// assigns starts as NaN (uploaded), so an element it fails to write fails the comparison; an
// output it accumulates into starts from the same random values on both sides. B's op runs, the
// results come back through B::memory::to_host (after ctx.synchronize() where the context has
// one) and are compared with cpu_ref's op run on host copies of the same inputs. Padding that
// an op must not touch (row strides wider than the rows) is compared bit for bit.
//
// The cases are data: one table per op group below (`gemm_cases`, `norm_cases`, ...), each row
// a shape, a seed and the relative tolerance for float and for double (`tolerance{f, d}`).
// Tolerances (float): pointwise maps, norms and softmax are evaluated in double on both sides,
// so 1e-5 relative per element (check_close: with a floor of 1e-3 * max|want| for elements that
// cancel to near zero). GEMM: cpu_ref accumulates in float in another order than a fast backend,
// so 1e-5 relative to max|C| (check_close_max; k <= 100). Column reductions over many rows:
// 1e-5 relative to max. FFT convolution: 1e-5 relative to max|y| (float FFT error grows like
// eps * log N). Losses: the returned sums are compared at 1e-9 relative (both sides accumulate
// in double). Double runs use 1e-12 (1e-10 for the FFT). Gathers and copies are exact. These are
// the tolerances of a backend that evaluates in double where cpu_ref does (cuda); a backend that
// evaluates in float instead gets a slack factor over them (options::slack: cpu's runner).
//
// To add a case: append a row to its group's table (a failing comparison says which tolerance
// would have passed: "would pass with"). To add an op: a case struct and table, a runner member
// comparing it, and a SUBCASE in run(). To run the suite on another backend B: a test program with
//   TEST_CASE_TEMPLATE("op suite: mine against cpu_ref", T, float, double) {
//     my_backend::context ctx(...);
//     hyena::testing::op_suite::run<my_backend, T>(ctx);  // or (ctx, {.slack = {f, d}})
//   }
// B needs what backend/concept.hpp asks: B::context, B::memory (allocate, release, to_device,
// to_host) and every op. options{.exact = true} is for a backend whose arithmetic is cpu_ref's own:
// every comparison is then bit for bit. Failures name the backend and type (INFO), the op group
// (SUBCASE), the case (INFO: the table row) and the output compared.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu_ref/cpu_ref.hpp>

namespace hyena::testing::op_suite {

namespace hb = hyena::backend;
using ref = hb::cpu_ref;

// ---------------------------------------------------------------- comparisons

// Relative tolerances: for float and for double.
struct tolerance {
  double f = 0, d = 0;
};
template <class T>
double pick(const tolerance& t) {
  return std::is_same_v<T, float> ? t.f : t.d;
}

template <class V>
double max_abs(const std::vector<V>& v) {
  double m = 0;
  for (V x : v) m = std::max(m, std::abs(double(x)));
  return m;
}

// Per element: |got - want| <= rel * (w_weight * |want| + floor * max|want|); NaN fails.
// rel == 0 asks for equal values.
template <class V>
void check_close(const std::vector<V>& got, const std::vector<V>& want, double rel, const std::string& what,
                 double floor = 1e-3, double w_weight = 1.0) {
  REQUIRE(got.size() == want.size());
  const double scale = floor * max_abs(want);
  index_t bad = 0, first = -1;
  double needed = 0;  // the smallest rel that would pass (infinite for a NaN)
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = double(got[i]), w = double(want[i]), err = std::abs(g - w), unit = w_weight * std::abs(w) + scale;
    const bool ok = std::isfinite(g) && err <= rel * unit;
    if (!ok && bad++ == 0) first = index_t(i);
    needed = std::max(needed, !std::isfinite(g) ? HUGE_VAL : err == 0 ? 0.0 : unit > 0 ? err / unit : HUGE_VAL);
  }
  INFO(what << ": " << bad << " of " << got.size() << " elements off (rel " << rel << ", would pass with " << needed
            << "); first at " << first << " got " << std::setprecision(17)
            << (first >= 0 ? double(got[std::size_t(first)]) : 0.0) << " want "
            << (first >= 0 ? double(want[std::size_t(first)]) : 0.0));
  CHECK(bad == 0);
}
// |got - want| <= rel * max|want| everywhere (for sums whose terms cancel: GEMM, FFT, reductions).
template <class V>
void check_close_max(const std::vector<V>& got, const std::vector<V>& want, double rel, const std::string& what) {
  check_close(got, want, rel, what, 1.0, 0.0);
}
// Bit for bit, NaN included (what an op must leave untouched, or copy).
template <class V>
void check_same_bits(const std::vector<V>& got, const std::vector<V>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  index_t bad = 0, first = -1;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(V)) != 0 && bad++ == 0) first = index_t(i);
  INFO(what << ": " << bad << " of " << got.size() << " elements differ in their bits; first at " << first);
  CHECK(bad == 0);
}
// A scalar result (a loss, a sum): |got - want| <= rel * |want| + abs.
inline void check_scalar(double got, double want, double rel, const std::string& what, double abs = 0) {
  INFO(what << ": got " << std::setprecision(17) << got << " want " << want << " (rel " << rel << ", abs " << abs
            << "; relative error " << std::abs(got - want) / std::abs(want) << ")");
  CHECK((std::isfinite(got) && std::abs(got - want) <= rel * std::abs(want) + abs));
}

// ---------------------------------------------------------------- inputs and B's memory

// Uniform in [-scale, scale] with |v| >= 0.05 * scale: never zero.
template <class V>
std::vector<V> random_vec(index_t n, unsigned seed, double scale = 1.0) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(0.05, 1.0);
  std::bernoulli_distribution sign(0.5);
  std::vector<V> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = V((sign(g) ? -1.0 : 1.0) * u(g) * scale);
  return v;
}
template <class V>
std::vector<V> nan_vec(index_t n) {
  return std::vector<V>(static_cast<std::size_t>(n), std::numeric_limits<V>::quiet_NaN());
}

// `n` values of V in the memory M (a backend's B::memory), filled from the host.
template <class M, class V>
class buffer {
 public:
  explicit buffer(const std::vector<V>& h) : n_(h.size()) {
    p_ = static_cast<V*>(M::allocate(sizeof(V) * n_));
    upload(h);
  }
  buffer(buffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; }
  buffer(const buffer&) = delete;
  buffer& operator=(const buffer&) = delete;
  buffer& operator=(buffer&&) = delete;
  ~buffer() { M::release(p_); }

  V* get() const { return p_; }
  void upload(const std::vector<V>& h) {
    REQUIRE(h.size() == n_);
    M::to_device(p_, h.data(), sizeof(V) * n_);
  }
  // Read back (the caller has waited for the backend's queued work: see runner::down).
  std::vector<V> to_host() const {
    std::vector<V> h(n_);
    M::to_host(h.data(), p_, sizeof(V) * n_);
    return h;
  }

 private:
  V* p_ = nullptr;
  std::size_t n_ = 0;
};

// Waits for the context's queued work where it has a queue (cuda_context), else nothing.
template <class C>
void synchronize(C& ctx) {
  if constexpr (requires(C& c) { c.synchronize(); }) ctx.synchronize();
}

// Rows of `ld` values split into their first `cols` (the body) and the rest (the padding).
template <class V>
void split_rows(const std::vector<V>& v, index_t ld, index_t cols, std::vector<V>& body, std::vector<V>& pad) {
  body.clear();
  pad.clear();
  for (std::size_t i = 0; i < v.size(); ++i) (index_t(i) % ld < cols ? body : pad).push_back(v[i]);
}

// ---------------------------------------------------------------- the cases

// gemm (batch 0) or gemm_batched (batch >= 1 products, A shared with stride 0 when shared_a):
// C = alpha op(A) op(B) + beta C, row strides lda = rows + 3, ldb = + 2, ldc = n + 5 (the padding
// must stay untouched). beta == 0: C starts as NaN (it must not be read). a_lower / a_upper: op(A)
// has zeros where the hint says; c_lower: only C's lower triangle is compared.
struct gemm_case {
  index_t m, n, k;
  bool ta, tb;
  double alpha, beta;
  index_t batch;
  bool shared_a;
  hb::triangle tri;
  unsigned seed;
  tolerance tol;  // relative to max|C|
};
inline const std::vector<gemm_case> gemm_cases{
    // m   n   k   ta     tb     alpha beta batch shared tri                    seed tol
    {33, 47, 65, false, false, 1.5, 0.0, 0, false, hb::triangle::none, 2, {1e-5, 1e-12}},
    {33, 47, 65, false, false, 1.5, 0.5, 0, false, hb::triangle::none, 2, {1e-5, 1e-12}},
    {33, 47, 65, false, true, 1.5, 0.0, 0, false, hb::triangle::none, 2, {1e-5, 1e-12}},
    {33, 47, 65, false, true, 1.5, 0.5, 0, false, hb::triangle::none, 2, {1e-5, 1e-12}},
    {33, 47, 65, true, false, 1.5, 0.0, 0, false, hb::triangle::none, 2, {1e-5, 1e-12}},
    {33, 47, 65, true, false, 1.5, 0.5, 0, false, hb::triangle::none, 2, {1e-5, 1e-12}},
    {33, 47, 65, true, true, 1.5, 0.0, 0, false, hb::triangle::none, 2, {1e-5, 1e-12}},
    {33, 47, 65, true, true, 1.5, 0.5, 0, false, hb::triangle::none, 2, {1e-5, 1e-12}},
    {16, 24, 40, true, true, 1.0, 0.0, 5, true, hb::triangle::none, 5, {1e-5, 1e-12}},
    {9, 12, 30, false, true, 0.5, 1.0, 3, false, hb::triangle::none, 6, {1e-5, 1e-12}},
    // attention's shapes under the triangle hints: scores (L x L over depth D), products over L keys
    {37, 37, 24, false, true, 1.0, 0.0, 3, false, hb::triangle::c_lower, 7, {1e-5, 1e-12}},
    {37, 24, 37, false, false, 1.0, 0.0, 2, false, hb::triangle::a_lower, 8, {1e-5, 1e-12}},
    {37, 24, 37, true, false, 1.0, 1.0, 2, false, hb::triangle::a_upper, 9, {1e-5, 1e-12}},
};
inline std::ostream& operator<<(std::ostream& os, const gemm_case& c) {
  return os << "gemm_case{m " << c.m << ", n " << c.n << ", k " << c.k << ", ta " << c.ta << ", tb " << c.tb
            << ", alpha " << c.alpha << ", beta " << c.beta << ", batch " << c.batch << ", shared_a " << c.shared_a
            << ", tri " << int(c.tri) << ", seed " << c.seed << "}";
}

// gemm_bias: C = op(A) op(B) + bias on every row (a linear layer's forward); lda = rows + 3,
// ldb = + 2, C contiguous (ldc = n, which the CUDA backend requires) and starting as NaN.
struct gemm_bias_case {
  index_t m, n, k;
  bool ta, tb;
  unsigned seed;
  tolerance tol;  // relative to max|C|
};
inline const std::vector<gemm_bias_case> gemm_bias_cases{
    // m   n   k    ta     tb    seed tol
    {33, 47, 65, false, true, 11, {1e-5, 1e-12}},  // x W^T + b
    {70, 130, 300, false, true, 12, {1e-5, 1e-12}},  // more than one tile and depth pass
    {33, 47, 65, true, false, 13, {1e-5, 1e-12}},
};
inline std::ostream& operator<<(std::ostream& os, const gemm_bias_case& c) {
  return os << "gemm_bias_case{m " << c.m << ", n " << c.n << ", k " << c.k << ", ta " << c.ta << ", tb " << c.tb
            << ", seed " << c.seed << "}";
}

// The pointwise ops and column sums over a (rows, cols) matrix: a (scale 3) and b as inputs,
// bias (cols). Assigned outputs start as NaN; axpy, scale, axpby, add_bias and bias_grad
// accumulate into (or scale) a random start. swiglu: gate_up is (rows, 2 * (cols / 2)) inside a.
enum class ew {
  fill,
  copy,
  add,
  axpy,
  scale,
  axpby,
  mul,
  add_bias,
  bias_grad,
  gelu_forward,
  gelu_backward,
  swiglu_forward,
  swiglu_backward,
  sum_squares
};
inline const char* name(ew op) {
  switch (op) {
    case ew::fill: return "fill";
    case ew::copy: return "copy";
    case ew::add: return "add";
    case ew::axpy: return "axpy";
    case ew::scale: return "scale";
    case ew::axpby: return "axpby";
    case ew::mul: return "mul";
    case ew::add_bias: return "add_bias";
    case ew::bias_grad: return "bias_grad";
    case ew::gelu_forward: return "gelu_forward";
    case ew::gelu_backward: return "gelu_backward";
    case ew::swiglu_forward: return "swiglu_forward";
    case ew::swiglu_backward: return "swiglu_backward";
    case ew::sum_squares: return "sum_squares";
  }
  return "?";
}
struct elementwise_case {
  ew op;
  index_t rows, cols;
  unsigned seed;
  tolerance tol;  // per element (bias_grad: relative to max; sum_squares: of the sum)
};
inline const std::vector<elementwise_case> elementwise_cases{
    {ew::fill, 37, 129, 7, {0, 0}},
    {ew::copy, 37, 129, 7, {0, 0}},
    {ew::add, 37, 129, 7, {1e-6, 1e-6}},
    {ew::axpy, 37, 129, 7, {1e-5, 1e-5}},
    {ew::scale, 1, 10007, 101, {0, 0}},
    {ew::axpby, 1, 10007, 101, {1e-6, 1e-15}},
    {ew::mul, 37, 129, 7, {1e-6, 1e-6}},
    {ew::add_bias, 37, 129, 7, {1e-5, 1e-5}},
    {ew::bias_grad, 37, 129, 7, {1e-5, 1e-5}},
    {ew::bias_grad, 20000, 70, 12, {1e-5, 1e-12}},  // many rows: a split column reduction
    {ew::gelu_forward, 37, 129, 7, {1e-5, 1e-5}},
    {ew::gelu_backward, 37, 129, 7, {1e-5, 1e-5}},
    {ew::swiglu_forward, 37, 129, 7, {1e-5, 1e-5}},
    {ew::swiglu_backward, 37, 129, 7, {1e-5, 1e-5}},
    {ew::sum_squares, 37, 129, 7, {1e-12, 1e-12}},
};
inline std::ostream& operator<<(std::ostream& os, const elementwise_case& c) {
  return os << "elementwise_case{" << name(c.op) << ", rows " << c.rows << ", cols " << c.cols << ", seed " << c.seed
            << "}";
}

// layer_norm and rms_norm forward (eps 1e-5, 1e-6) and backward (from cpu_ref's saved mean and
// rstd; the weight and bias gradients accumulate, compared relative to max), rms_norm's backward
// also without dx. x has a non-zero mean.
struct norm_case {
  index_t rows, cols;
  unsigned seed;
  tolerance tol;
};
inline const std::vector<norm_case> norm_cases{
    {29, 700, 13, {1e-5, 1e-12}},
    {64, 33, 14, {1e-5, 1e-12}},
};
inline std::ostream& operator<<(std::ostream& os, const norm_case& c) {
  return os << "norm_case{rows " << c.rows << ", cols " << c.cols << ", seed " << c.seed << "}";
}

// embedding_forward (a gather: exact) and embedding_backward (scatter-add into a random start,
// relative to max) with ids (t * 7 + 3) % vocab: many repeats.
struct embedding_case {
  index_t tokens, dim, vocab;
  unsigned seed;
  tolerance tol;  // of the backward
};
inline const std::vector<embedding_case> embedding_cases{
    {300, 96, 50, 19, {1e-5, 1e-5}},
};
inline std::ostream& operator<<(std::ostream& os, const embedding_case& c) {
  return os << "embedding_case{tokens " << c.tokens << ", dim " << c.dim << ", vocab " << c.vocab << ", seed "
            << c.seed << "}";
}

// rotary_forward and rotary_backward in place on (batch, seq, heads, head_dim) rows of row_stride.
struct rotary_case {
  index_t batch, seq, heads, head_dim, row_stride, rot_dims;
  double base;
  unsigned seed;
  tolerance tol;
};
inline const std::vector<rotary_case> rotary_cases{
    {2, 37, 3, 16, 3 * 3 * 16, 12, 10000.0, 22, {1e-5, 1e-5}},
};
inline std::ostream& operator<<(std::ostream& os, const rotary_case& c) {
  return os << "rotary_case{batch " << c.batch << ", seq " << c.seq << ", heads " << c.heads << ", head_dim "
            << c.head_dim << ", row_stride " << c.row_stride << ", rot_dims " << c.rot_dims << ", seed " << c.seed
            << "}";
}

// causal_softmax forward and backward (from cpu_ref's probabilities), each also in place.
struct softmax_case {
  index_t batches, seq;
  double scale;
  unsigned seed;
  tolerance tol;
};
inline const std::vector<softmax_case> softmax_cases{
    {3, 70, 0.35, 23, {1e-5, 1e-12}},
};
inline std::ostream& operator<<(std::ostream& os, const softmax_case& c) {
  return os << "softmax_case{batches " << c.batches << ", seq " << c.seq << ", scale " << c.scale << ", seed "
            << c.seed << "}";
}

// The fused causal attention forward (out, lse) and backward (dqkv from cpu_ref's out and lse),
// MHA and GQA, scale 1/sqrt(head_dim); qkv rows 3 wider than the fused width, out rows 5 wider
// than heads * head_dim: the padding must stay untouched.
struct attention_case {
  index_t batch, seq, heads, kv_heads, head_dim;
  unsigned seed;
  tolerance tol;  // out, lse per element; dqkv relative to max
};
inline const std::vector<attention_case> attention_cases{
    {2, 45, 4, 4, 16, 103, {1e-5, 1e-12}},
    {2, 45, 6, 2, 40, 103, {1e-5, 1e-12}},
    {2, 45, 2, 1, 64, 103, {1e-5, 1e-12}},
};
inline std::ostream& operator<<(std::ostream& os, const attention_case& c) {
  return os << "attention_case{batch " << c.batch << ", seq " << c.seq << ", heads " << c.heads << ", kv_heads "
            << c.kv_heads << ", head_dim " << c.head_dim << ", seed " << c.seed << "}";
}

// short_conv forward (with and without bias) and backward (dx assigned; dweight, dbias
// accumulated and compared relative to max; also without dx).
struct short_conv_case {
  index_t batch, seq, channels, kernel;
  unsigned seed;
  tolerance tol;
};
inline const std::vector<short_conv_case> short_conv_cases{
    {3, 41, 67, 4, 25, {1e-5, 1e-5}},
};
inline std::ostream& operator<<(std::ostream& os, const short_conv_case& c) {
  return os << "short_conv_case{batch " << c.batch << ", seq " << c.seq << ", channels " << c.channels
            << ", kernel " << c.kernel << ", seed " << c.seed << "}";
}

// causal_conv (the long FFT convolution) forward and backward, both gradients and each alone;
// dh accumulates into [0, seq) of rows h_stride long (the rest must keep its values). Relative
// to max.
struct causal_conv_case {
  index_t batch, seq, channels, h_stride;
  unsigned seed;
  tolerance tol;
};
inline const std::vector<causal_conv_case> causal_conv_cases{
    {2, 1, 24, 130, 31, {1e-5, 1e-10}},
    {2, 100, 24, 130, 31, {1e-5, 1e-10}},
    {2, 128, 24, 130, 31, {1e-5, 1e-10}},
};
inline std::ostream& operator<<(std::ostream& os, const causal_conv_case& c) {
  return os << "causal_conv_case{batch " << c.batch << ", seq " << c.seq << ", channels " << c.channels
            << ", h_stride " << c.h_stride << ", seed " << c.seed << "}";
}

// The implicit filter's ops on (rows, cols): sin forward and backward (dx aliasing dy; dfreq
// accumulated), the decay window forward and backward (seq = rows, h rows rows + 9 long whose
// tail must keep its values), scale_add, scale_grad, and copy_strided (cols / 2 - 3 columns from
// column cols / 8 into rows cols / 2 + 5 long: exact).
struct filter_case {
  index_t rows, cols;
  unsigned seed;
  tolerance tol;
};
inline const std::vector<filter_case> filter_cases{
    {53, 40, 35, {1e-5, 1e-5}},
};
inline std::ostream& operator<<(std::ostream& os, const filter_case& c) {
  return os << "filter_case{rows " << c.rows << ", cols " << c.cols << ", seed " << c.seed << "}";
}

// count_targets, cross_entropy (targets (r * 977 + 11) % vocab, rows 4 and rows - 1 ignored;
// also with null outputs), forward KL (also of identical rows: zero), MSE; logits of scale 5.
struct loss_case {
  index_t rows, vocab;
  unsigned seed;
  tolerance tol;   // per-row losses and gradients
  double sum_rel;  // the returned sums
};
inline const std::vector<loss_case> loss_cases{
    {19, 3001, 40, {1e-5, 1e-12}, 1e-9},
};
inline std::ostream& operator<<(std::ostream& os, const loss_case& c) {
  return os << "loss_case{rows " << c.rows << ", vocab " << c.vocab << ", seed " << c.seed << "}";
}

// topk_kl_divergence with k (k >= vocab: the forward KL; temperature 1.5) or, for k == 0,
// reverse_kl_divergence (temperature 2); teacher logits with ties every 97 ids.
struct kl_case {
  index_t rows, vocab, k;
  unsigned seed;
  tolerance tol;
  double sum_rel;
};
inline const std::vector<kl_case> kl_cases{
    {7, 1500, 1, 124, {1e-5, 1e-12}, 1e-9},    {7, 1500, 10, 124, {1e-5, 1e-12}, 1e-9},
    {7, 1500, 257, 124, {1e-5, 1e-12}, 1e-9},  {7, 1500, 1500, 124, {1e-5, 1e-12}, 1e-9},
    {7, 1500, 1505, 124, {1e-5, 1e-12}, 1e-9}, {7, 1500, 0, 124, {1e-5, 1e-12}, 1e-9},
};
inline std::ostream& operator<<(std::ostream& os, const kl_case& c) {
  return os << "kl_case{rows " << c.rows << ", vocab " << c.vocab << ", k " << c.k
            << (c.k == 0 ? " (reverse KL)" : "") << ", seed " << c.seed << "}";
}

// The distiller's ops: causal_attention_probs (from cpu_ref's lse), attention_lag_sums (double
// sums accumulated from 0.25) and hyena_attention_alignment (filter rows seq + 2 long: d_h assigns
// the first seq, the rest must keep its values; d_bias accumulates), scale 0.35.
struct alignment_case {
  index_t batch, seq, heads, kv_heads, head_dim;
  unsigned seed;
  tolerance tol;     // probabilities and gradients
  double sums_rel;   // the lag sums (double on both sides)
  double loss_rel;   // the returned loss
};
inline const std::vector<alignment_case> alignment_cases{
    {2, 21, 4, 2, 8, 105, {1e-5, 1e-12}, 1e-12, 1e-9},
};
inline std::ostream& operator<<(std::ostream& os, const alignment_case& c) {
  return os << "alignment_case{batch " << c.batch << ", seq " << c.seq << ", heads " << c.heads << ", kv_heads "
            << c.kv_heads << ", head_dim " << c.head_dim << ", seed " << c.seed << "}";
}

// The decode ops over pos.size() rows at positions pos (each < max_len): rotary_at (rot_dims
// 3/4 of head_dim, rows 7 wider), attention_decode (scale 0.25, q rows 3 wider), short_conv_step,
// causal_conv_step (h rows max_len + 1 long), modal_prefill (of the first prefill_len positions,
// poles of scale 0.6) and modal_step (from cpu_ref's prefilled state). Sums relative to max.
struct decode_case {
  index_t heads, kv_heads, head_dim, max_len, channels, kernel, modes, prefill_len;
  std::vector<index_t> pos;
  unsigned seed;
  tolerance tol;
};
inline const std::vector<decode_case> decode_cases{
    {4, 2, 16, 40, 24, 3, 5, 25, {0, 17, 39}, 111, {1e-5, 1e-12}},
};
inline std::ostream& operator<<(std::ostream& os, const decode_case& c) {
  os << "decode_case{heads " << c.heads << ", kv_heads " << c.kv_heads << ", head_dim " << c.head_dim << ", max_len "
     << c.max_len << ", channels " << c.channels << ", kernel " << c.kernel << ", modes " << c.modes << ", pos";
  for (index_t p : c.pos) os << " " << p;
  return os << ", seed " << c.seed << "}";
}

// One adamw_step over segments of these sizes (their own learning rates and decays, a clip
// factor). The same double arithmetic on both sides; a device may contract into FMAs, so an ulp.
// The gradients must come back unchanged.
struct adamw_case {
  std::vector<index_t> sizes;
  unsigned seed;
  tolerance tol;
};
inline const std::vector<adamw_case> adamw_cases{
    {{1, 5000, 70000}, 130, {2e-7, 1e-15}},
};
inline std::ostream& operator<<(std::ostream& os, const adamw_case& c) {
  os << "adamw_case{sizes";
  for (index_t n : c.sizes) os << " " << n;
  return os << ", seed " << c.seed << "}";
}

// ---------------------------------------------------------------- the runner

// The runner's members are marked cold: compiled for size, with little inlining. What they hold
// is the suite's bookkeeping (inputs, buffers, comparisons), not the ops it measures, which stay
// out of line at the build's optimisation level; at -O3 with the ops inlined into them, this one
// header tripled the compile time of a runner program.
#if defined(__GNUC__) || defined(__clang__)
#define HYENA_OP_SUITE_COLD [[gnu::cold]]
#else
#define HYENA_OP_SUITE_COLD
#endif

struct options {
  bool exact = false;  // every comparison bit for bit (a backend running cpu_ref's own arithmetic)
  // Every tolerance of the tables times slack.f (float) or slack.d (double): for a backend that
  // evaluates in float what cpu_ref evaluates in double (the cpu backend's SIMD maps, exp, sin and
  // float partial sums), whose float errors are a few ulps of the largest value, not of each element.
  tolerance slack{1, 1};
};

// Runs each group's cases on B (context ctx) and on cpu_ref, for the scalar type T.
template <class B, class T>
class runner {
 public:
  using context = typename B::context;
  template <class V>
  using dev = buffer<typename B::memory, V>;

  runner(context& ctx, options o) : ctx_(ctx), opt_(o) {}

  HYENA_OP_SUITE_COLD void gemm(const gemm_case& c) {
    const index_t a_rows = c.ta ? c.k : c.m, a_cols = c.ta ? c.m : c.k, b_rows = c.tb ? c.n : c.k;
    const index_t lda = a_cols + 3, ldb = (c.tb ? c.k : c.n) + 2, ldc = c.n + 5;
    const index_t count = std::max<index_t>(c.batch, 1), a_mats = c.shared_a ? 1 : count;
    const index_t a_size = a_rows * lda, b_size = b_rows * ldb, c_size = c.m * ldc;
    std::vector<T> a = random_vec<T>(a_mats * a_size, c.seed), b = random_vec<T>(count * b_size, c.seed + 1);
    if (c.tri == hb::triangle::a_lower || c.tri == hb::triangle::a_upper)
      for (index_t mat = 0; mat < a_mats; ++mat)
        for (index_t i = 0; i < c.m; ++i)
          for (index_t p = 0; p < c.k; ++p)
            if (c.tri == hb::triangle::a_lower ? p > i : p < i)
              a[std::size_t(mat * a_size + (c.ta ? p * lda + i : i * lda + p))] = T(0);
    const std::vector<T> c0 =
        c.beta == 0.0 ? nan_vec<T>(count * c_size) : random_vec<T>(count * c_size, c.seed + 2);
    std::vector<T> want = c0;
    dev<T> da(a), db(b), dc(c0);
    const T alpha = T(c.alpha), beta = T(c.beta);
    if (c.batch == 0) {
      ref::gemm<T>(host_, c.ta, c.tb, c.m, c.n, c.k, alpha, a.data(), lda, b.data(), ldb, beta, want.data(), ldc,
                   c.tri);
      B::template gemm<T>(ctx_, c.ta, c.tb, c.m, c.n, c.k, alpha, da.get(), lda, db.get(), ldb, beta, dc.get(), ldc,
                          c.tri);
    } else {
      const index_t stride_a = c.shared_a ? 0 : a_size;
      ref::gemm_batched<T>(host_, c.ta, c.tb, c.m, c.n, c.k, alpha, a.data(), lda, stride_a, b.data(), ldb, b_size,
                           beta, want.data(), ldc, c_size, c.batch, c.tri);
      B::template gemm_batched<T>(ctx_, c.ta, c.tb, c.m, c.n, c.k, alpha, da.get(), lda, stride_a, db.get(), ldb,
                                  b_size, beta, dc.get(), ldc, c_size, c.batch, c.tri);
    }
    const std::vector<T> got = down(dc);
    std::vector<T> got_c, want_c, got_pad, want_pad;
    for (index_t mat = 0; mat < count; ++mat)
      for (index_t i = 0; i < c.m; ++i)
        for (index_t j = 0; j < ldc; ++j) {
          const std::size_t at = std::size_t(mat * c_size + i * ldc + j);
          if (j >= c.n) {
            got_pad.push_back(got[at]);
            want_pad.push_back(c0[at]);
          } else if (c.tri != hb::triangle::c_lower || j <= i) {  // c_lower: the upper part is unspecified
            got_c.push_back(got[at]);
            want_c.push_back(want[at]);
          }
        }
    check_close_max(got_c, want_c, rel(c.tol), c.batch == 0 ? "gemm C" : "gemm_batched C");
    check_same_bits(got_pad, want_pad, "C's padding (untouched)");
  }

  HYENA_OP_SUITE_COLD void gemm_bias(const gemm_bias_case& c) {
    const index_t a_rows = c.ta ? c.k : c.m, lda = (c.ta ? c.m : c.k) + 3;
    const index_t b_rows = c.tb ? c.n : c.k, ldb = (c.tb ? c.k : c.n) + 2;
    const std::vector<T> a = random_vec<T>(a_rows * lda, c.seed), b = random_vec<T>(b_rows * ldb, c.seed + 1),
                         bias = random_vec<T>(c.n, c.seed + 2), c0 = nan_vec<T>(c.m * c.n);
    std::vector<T> want = c0;
    dev<T> da(a), db(b), dbias(bias), dc(c0);
    ref::gemm_bias<T>(host_, c.ta, c.tb, c.m, c.n, c.k, a.data(), lda, b.data(), ldb, bias.data(), want.data(), c.n);
    B::template gemm_bias<T>(ctx_, c.ta, c.tb, c.m, c.n, c.k, da.get(), lda, db.get(), ldb, dbias.get(), dc.get(), c.n);
    check_close_max(down(dc), want, rel(c.tol), "gemm_bias C");
  }

  HYENA_OP_SUITE_COLD void elementwise(const elementwise_case& c) {
    const index_t n = c.rows * c.cols, width = c.cols / 2;
    const std::vector<T> a = random_vec<T>(n, c.seed, 3.0), b = random_vec<T>(n, c.seed + 1),
                         bias = random_vec<T>(c.cols, c.seed + 2);
    dev<T> da(a), db(b), dbias(bias);
    if (c.op == ew::sum_squares) {
      check_scalar(B::template sum_squares<T>(ctx_, n, da.get()), ref::sum_squares<T>(host_, n, a.data()),
                   rel(c.tol), name(c.op));
      return;
    }
    index_t out = n;
    bool accumulates = false;
    switch (c.op) {
      case ew::bias_grad: out = c.cols; accumulates = true; break;
      case ew::axpy:
      case ew::scale:
      case ew::axpby:
      case ew::add_bias: accumulates = true; break;
      case ew::swiglu_forward: out = c.rows * width; break;
      case ew::swiglu_backward: out = c.rows * 2 * width; break;
      default: break;
    }
    std::vector<T> want = accumulates ? random_vec<T>(out, c.seed + 3) : nan_vec<T>(out);
    dev<T> dy(want);
    apply<ref>(host_, c, a.data(), b.data(), bias.data(), want.data());
    apply<B>(ctx_, c, da.get(), db.get(), dbias.get(), dy.get());
    if (c.op == ew::bias_grad)
      check_close_max(down(dy), want, rel(c.tol), name(c.op));
    else
      check_close(down(dy), want, rel(c.tol), name(c.op));
  }

  HYENA_OP_SUITE_COLD void norm(const norm_case& c) {
    const index_t rows = c.rows, cols = c.cols, n = rows * cols;
    std::vector<T> x = random_vec<T>(n, c.seed, 2.0);
    for (auto& v : x) v += T(0.3);  // a non-zero mean
    const std::vector<T> w = random_vec<T>(cols, c.seed + 1), bias = random_vec<T>(cols, c.seed + 2),
                         dy = random_vec<T>(n, c.seed + 3), gw0 = random_vec<T>(cols, c.seed + 4),
                         gb0 = random_vec<T>(cols, c.seed + 5);
    const double r = rel(c.tol);
    dev<T> dx_in(x), dw(w), db(bias), ddy(dy);

    std::vector<T> y = nan_vec<T>(n), mean = nan_vec<T>(rows), rstd = nan_vec<T>(rows);
    ref::layer_norm_forward<T>(host_, rows, cols, x.data(), w.data(), bias.data(), 1e-5, y.data(), mean.data(),
                               rstd.data());
    {
      dev<T> gy(nan_vec<T>(n)), gmean(nan_vec<T>(rows)), grstd(nan_vec<T>(rows));
      B::template layer_norm_forward<T>(ctx_, rows, cols, dx_in.get(), dw.get(), db.get(), 1e-5, gy.get(),
                                        gmean.get(), grstd.get());
      check_close(down(gy), y, r, "layer_norm y");
      check_close(down(gmean), mean, r, "layer_norm mean");
      check_close(down(grstd), rstd, r, "layer_norm rstd");
    }
    {
      std::vector<T> dx = nan_vec<T>(n), gw = gw0, gb = gb0;
      ref::layer_norm_backward<T>(host_, rows, cols, x.data(), w.data(), mean.data(), rstd.data(), dy.data(),
                                  dx.data(), gw.data(), gb.data());
      dev<T> dmean(mean), drstd(rstd), gdx(nan_vec<T>(n)), ggw(gw0), ggb(gb0);
      B::template layer_norm_backward<T>(ctx_, rows, cols, dx_in.get(), dw.get(), dmean.get(), drstd.get(),
                                         ddy.get(), gdx.get(), ggw.get(), ggb.get());
      check_close(down(gdx), dx, r, "layer_norm dx");
      check_close_max(down(ggw), gw, r, "layer_norm dweight");
      check_close_max(down(ggb), gb, r, "layer_norm dbias");
    }

    std::vector<T> ry = nan_vec<T>(n), rrstd = nan_vec<T>(rows);
    ref::rms_norm_forward<T>(host_, rows, cols, x.data(), w.data(), 1e-6, ry.data(), rrstd.data());
    {
      dev<T> gy(nan_vec<T>(n)), grstd(nan_vec<T>(rows));
      B::template rms_norm_forward<T>(ctx_, rows, cols, dx_in.get(), dw.get(), 1e-6, gy.get(), grstd.get());
      check_close(down(gy), ry, r, "rms_norm y");
      check_close(down(grstd), rrstd, r, "rms_norm rstd");
    }
    {
      std::vector<T> dx = nan_vec<T>(n), gw = gw0;
      ref::rms_norm_backward<T>(host_, rows, cols, x.data(), w.data(), rrstd.data(), dy.data(), dx.data(),
                                gw.data());
      dev<T> drstd(rrstd), gdx(nan_vec<T>(n)), ggw(gw0);
      B::template rms_norm_backward<T>(ctx_, rows, cols, dx_in.get(), dw.get(), drstd.get(), ddy.get(), gdx.get(),
                                       ggw.get());
      check_close(down(gdx), dx, r, "rms_norm dx");
      check_close_max(down(ggw), gw, r, "rms_norm dweight");
      // dx may be null (skipped): only dweight accumulates.
      ggw.upload(gw0);
      B::template rms_norm_backward<T>(ctx_, rows, cols, dx_in.get(), dw.get(), drstd.get(), ddy.get(),
                                       static_cast<T*>(nullptr), ggw.get());
      check_close_max(down(ggw), gw, r, "rms_norm dweight (no dx)");
    }
  }

  HYENA_OP_SUITE_COLD void embedding(const embedding_case& c) {
    const index_t n = c.tokens, dim = c.dim, vocab = c.vocab;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    for (index_t t = 0; t < n; ++t) ids[std::size_t(t)] = std::int32_t((t * 7 + 3) % vocab);  // many repeats
    const std::vector<T> table = random_vec<T>(vocab * dim, c.seed), dy = random_vec<T>(n * dim, c.seed + 1),
                         g0 = random_vec<T>(vocab * dim, c.seed + 2);
    dev<std::int32_t> dids(ids);
    dev<T> dtable(table), ddy(dy), gy(nan_vec<T>(n * dim)), gg(g0);
    std::vector<T> y = nan_vec<T>(n * dim), g = g0;
    ref::embedding_forward<T>(host_, n, dim, vocab, ids.data(), table.data(), y.data());
    B::template embedding_forward<T>(ctx_, n, dim, vocab, dids.get(), dtable.get(), gy.get());
    check_same_bits(down(gy), y, "embedding_forward");
    ref::embedding_backward<T>(host_, n, dim, ids.data(), dy.data(), g.data());
    B::template embedding_backward<T>(ctx_, n, dim, dids.get(), ddy.get(), gg.get());
    check_close_max(down(gg), g, rel(c.tol), "embedding_backward");
  }

  HYENA_OP_SUITE_COLD void rotary(const rotary_case& c) {
    const std::vector<T> x = random_vec<T>(c.batch * c.seq * c.row_stride, c.seed);
    for (int backward = 0; backward < 2; ++backward) {
      std::vector<T> want = x;
      dev<T> dx(x);
      if (backward) {
        ref::rotary_backward<T>(host_, c.batch, c.seq, c.heads, c.head_dim, c.row_stride, c.rot_dims, c.base,
                                want.data());
        B::template rotary_backward<T>(ctx_, c.batch, c.seq, c.heads, c.head_dim, c.row_stride, c.rot_dims, c.base,
                                       dx.get());
      } else {
        ref::rotary_forward<T>(host_, c.batch, c.seq, c.heads, c.head_dim, c.row_stride, c.rot_dims, c.base,
                               want.data());
        B::template rotary_forward<T>(ctx_, c.batch, c.seq, c.heads, c.head_dim, c.row_stride, c.rot_dims, c.base,
                                      dx.get());
      }
      check_close(down(dx), want, rel(c.tol), backward ? "rotary_backward" : "rotary_forward");
    }
  }

  HYENA_OP_SUITE_COLD void softmax(const softmax_case& c) {
    const index_t n = c.batches * c.seq * c.seq;
    const T scale = T(c.scale);
    const std::vector<T> s = random_vec<T>(n, c.seed, 4.0), dp = random_vec<T>(n, c.seed + 1);
    std::vector<T> p = nan_vec<T>(n), ds = nan_vec<T>(n);
    ref::causal_softmax_forward<T>(host_, c.batches, c.seq, scale, s.data(), p.data());
    ref::causal_softmax_backward<T>(host_, c.batches, c.seq, scale, p.data(), dp.data(), ds.data());
    const double r = rel(c.tol);
    dev<T> dsc(s), ddp(dp), dprobs(p), gp(nan_vec<T>(n)), gds(nan_vec<T>(n));
    B::template causal_softmax_forward<T>(ctx_, c.batches, c.seq, scale, dsc.get(), gp.get());
    check_close(down(gp), p, r, "causal_softmax_forward");
    B::template causal_softmax_forward<T>(ctx_, c.batches, c.seq, scale, dsc.get(), dsc.get());  // probs aliasing
    check_close(down(dsc), p, r, "causal_softmax_forward in place");
    B::template causal_softmax_backward<T>(ctx_, c.batches, c.seq, scale, dprobs.get(), ddp.get(), gds.get());
    check_close(down(gds), ds, r, "causal_softmax_backward");
    B::template causal_softmax_backward<T>(ctx_, c.batches, c.seq, scale, dprobs.get(), ddp.get(), ddp.get());
    check_close(down(ddp), ds, r, "causal_softmax_backward in place");
  }

  HYENA_OP_SUITE_COLD void attention(const attention_case& c) {
    const index_t D = c.head_dim, width = (c.heads + 2 * c.kv_heads) * D, qkv_row = width + 3,
                  out_row = c.heads * D + 5, rows = c.batch * c.seq;
    const T scale = T(1.0 / std::sqrt(double(D)));
    const double r = rel(c.tol);
    const std::vector<T> qkv = random_vec<T>(rows * qkv_row, c.seed), dout = random_vec<T>(rows * out_row, c.seed + 1);
    std::vector<T> out = nan_vec<T>(rows * out_row), lse = nan_vec<T>(c.batch * c.heads * c.seq);
    ref::causal_attention_forward<T>(host_, c.batch, c.seq, c.heads, c.kv_heads, D, scale, qkv.data(), qkv_row,
                                     out.data(), out_row, lse.data());
    dev<T> dqkv(qkv), ddout(dout);
    {
      dev<T> gout(nan_vec<T>(rows * out_row)), glse(nan_vec<T>(c.batch * c.heads * c.seq));
      B::template causal_attention_forward<T>(ctx_, c.batch, c.seq, c.heads, c.kv_heads, D, scale, dqkv.get(),
                                              qkv_row, gout.get(), out_row, glse.get());
      std::vector<T> got_o, want_o, got_pad, want_pad;
      split_rows(down(gout), out_row, c.heads * D, got_o, got_pad);
      split_rows(out, out_row, c.heads * D, want_o, want_pad);
      check_close(got_o, want_o, r, "causal_attention_forward out");
      check_same_bits(got_pad, want_pad, "causal_attention_forward out's padding (untouched)");
      check_close(down(glse), lse, r, "causal_attention_forward lse");
    }
    // dqkv: every q, k, v column assigned (they start as NaN), the padding keeps its 7s.
    std::vector<T> d0(std::size_t(rows * qkv_row), T(7));
    for (index_t row = 0; row < rows; ++row)
      for (index_t i = 0; i < width; ++i) d0[std::size_t(row * qkv_row + i)] = std::numeric_limits<T>::quiet_NaN();
    std::vector<T> want = d0;
    ref::causal_attention_backward<T>(host_, c.batch, c.seq, c.heads, c.kv_heads, D, scale, qkv.data(), qkv_row,
                                      out.data(), dout.data(), out_row, lse.data(), want.data());
    dev<T> rout(out), rlse(lse), gd(d0);
    B::template causal_attention_backward<T>(ctx_, c.batch, c.seq, c.heads, c.kv_heads, D, scale, dqkv.get(), qkv_row,
                                             rout.get(), ddout.get(), out_row, rlse.get(), gd.get());
    std::vector<T> got_d, want_d, got_pad, want_pad;
    split_rows(down(gd), qkv_row, width, got_d, got_pad);
    split_rows(want, qkv_row, width, want_d, want_pad);
    check_close_max(got_d, want_d, r, "causal_attention_backward dqkv");
    check_same_bits(got_pad, want_pad, "causal_attention_backward dqkv's padding (untouched)");
  }

  HYENA_OP_SUITE_COLD void short_conv(const short_conv_case& c) {
    const index_t n = c.batch * c.seq * c.channels, taps = c.channels * c.kernel;
    const std::vector<T> x = random_vec<T>(n, c.seed), w = random_vec<T>(taps, c.seed + 1),
                         b = random_vec<T>(c.channels, c.seed + 2), dy = random_vec<T>(n, c.seed + 3),
                         gw0 = random_vec<T>(taps, c.seed + 4), gb0 = random_vec<T>(c.channels, c.seed + 5);
    const double r = rel(c.tol);
    dev<T> dx_in(x), dw(w), db(b), ddy(dy);
    std::vector<T> y = nan_vec<T>(n), y_nb = nan_vec<T>(n), dx = nan_vec<T>(n), gw = gw0, gb = gb0;
    ref::short_conv_forward<T>(host_, c.batch, c.seq, c.channels, c.kernel, x.data(), w.data(), b.data(), y.data());
    ref::short_conv_forward<T>(host_, c.batch, c.seq, c.channels, c.kernel, x.data(), w.data(),
                               static_cast<const T*>(nullptr), y_nb.data());
    ref::short_conv_backward<T>(host_, c.batch, c.seq, c.channels, c.kernel, x.data(), w.data(), dy.data(), dx.data(),
                                gw.data(), gb.data());
    dev<T> gy(nan_vec<T>(n)), gdx(nan_vec<T>(n)), ggw(gw0), ggb(gb0);
    B::template short_conv_forward<T>(ctx_, c.batch, c.seq, c.channels, c.kernel, dx_in.get(), dw.get(), db.get(),
                                      gy.get());
    check_close(down(gy), y, r, "short_conv_forward y");
    B::template short_conv_backward<T>(ctx_, c.batch, c.seq, c.channels, c.kernel, dx_in.get(), dw.get(), ddy.get(),
                                       gdx.get(), ggw.get(), ggb.get());
    check_close(down(gdx), dx, r, "short_conv_backward dx");
    check_close_max(down(ggw), gw, r, "short_conv_backward dweight");
    check_close_max(down(ggb), gb, r, "short_conv_backward dbias");
    // No bias: y is the taps alone. No dx: only the parameter gradients accumulate.
    gy.upload(nan_vec<T>(n));
    B::template short_conv_forward<T>(ctx_, c.batch, c.seq, c.channels, c.kernel, dx_in.get(), dw.get(),
                                      static_cast<const T*>(nullptr), gy.get());
    check_close(down(gy), y_nb, r, "short_conv_forward y (no bias)");
    ggw.upload(gw0);
    ggb.upload(gb0);
    B::template short_conv_backward<T>(ctx_, c.batch, c.seq, c.channels, c.kernel, dx_in.get(), dw.get(), ddy.get(),
                                       static_cast<T*>(nullptr), ggw.get(), ggb.get());
    check_close_max(down(ggw), gw, r, "short_conv_backward dweight (no dx)");
    check_close_max(down(ggb), gb, r, "short_conv_backward dbias (no dx)");
  }

  HYENA_OP_SUITE_COLD void causal_conv(const causal_conv_case& c) {
    const index_t n = c.batch * c.seq * c.channels, hn = c.channels * c.h_stride;
    const std::vector<T> x = random_vec<T>(n, c.seed), h = random_vec<T>(hn, c.seed + 1),
                         dy = random_vec<T>(n, c.seed + 2), dh0 = random_vec<T>(hn, c.seed + 3);
    const double r = rel(c.tol);
    std::vector<T> y = nan_vec<T>(n), dx = nan_vec<T>(n), dh = dh0;
    ref::causal_conv_forward<T>(host_, c.batch, c.seq, c.channels, x.data(), h.data(), c.h_stride, y.data());
    ref::causal_conv_backward<T>(host_, c.batch, c.seq, c.channels, x.data(), h.data(), c.h_stride, dy.data(),
                                 dx.data(), dh.data());
    dev<T> dx_in(x), dh_f(h), ddy(dy), gy(nan_vec<T>(n)), gdx(nan_vec<T>(n)), gdh(dh0);
    B::template causal_conv_forward<T>(ctx_, c.batch, c.seq, c.channels, dx_in.get(), dh_f.get(), c.h_stride,
                                       gy.get());
    check_close_max(down(gy), y, r, "causal_conv_forward y");
    B::template causal_conv_backward<T>(ctx_, c.batch, c.seq, c.channels, dx_in.get(), dh_f.get(), c.h_stride,
                                        ddy.get(), gdx.get(), gdh.get());
    check_close_max(down(gdx), dx, r, "causal_conv_backward dx");
    // dh: only [0, seq) of each row changes; the rest keeps its initial values.
    check_close_max(down(gdh), dh, r, "causal_conv_backward dh");
    // Each gradient alone (the other pointer null).
    gdx.upload(nan_vec<T>(n));
    B::template causal_conv_backward<T>(ctx_, c.batch, c.seq, c.channels, dx_in.get(), dh_f.get(), c.h_stride,
                                        ddy.get(), gdx.get(), static_cast<T*>(nullptr));
    check_close_max(down(gdx), dx, r, "causal_conv_backward dx alone");
    gdh.upload(dh0);
    B::template causal_conv_backward<T>(ctx_, c.batch, c.seq, c.channels, dx_in.get(), dh_f.get(), c.h_stride,
                                        ddy.get(), static_cast<T*>(nullptr), gdh.get());
    check_close_max(down(gdh), dh, r, "causal_conv_backward dh alone");
  }

  HYENA_OP_SUITE_COLD void filter(const filter_case& c) {
    const index_t rows = c.rows, cols = c.cols, seq = c.rows, n = rows * cols;
    const std::vector<T> x = random_vec<T>(n, c.seed, 3.0), freq = random_vec<T>(cols, c.seed + 1, 2.0),
                         dy = random_vec<T>(n, c.seed + 2), f0 = random_vec<T>(cols, c.seed + 3),
                         y0 = random_vec<T>(n, c.seed + 4);
    const double r = rel(c.tol);
    dev<T> dxin(x), dfreq(freq), ddy(dy), gf(f0);
    {
      std::vector<T> y = nan_vec<T>(n), dx = nan_vec<T>(n), gfr = f0;
      ref::sin_forward<T>(host_, rows, cols, freq.data(), x.data(), y.data());
      ref::sin_backward<T>(host_, rows, cols, freq.data(), x.data(), dy.data(), dx.data(), gfr.data());
      dev<T> gy(nan_vec<T>(n));
      B::template sin_forward<T>(ctx_, rows, cols, dfreq.get(), dxin.get(), gy.get());
      check_close(down(gy), y, r, "sin_forward");
      B::template sin_backward<T>(ctx_, rows, cols, dfreq.get(), dxin.get(), ddy.get(), ddy.get(), gf.get());
      check_close(down(ddy), dx, r, "sin_backward dx (aliasing dy)");
      check_close_max(down(gf), gfr, r, "sin_backward dfreq");
    }
    {
      // h rows of h_stride: the window writes [0, seq), the tail keeps its 7s.
      const index_t h_stride = seq + 9;
      std::vector<T> h(std::size_t(cols * h_stride), T(7)), dk = nan_vec<T>(seq * cols);
      ref::decay_window_forward<T>(host_, seq, cols, 0.01, 0.3, 1.5, x.data(), h.data(), h_stride);
      ref::decay_window_backward<T>(host_, seq, cols, 0.01, 0.3, 1.5, h.data(), h_stride, dk.data());
      dev<T> gh(std::vector<T>(std::size_t(cols * h_stride), T(7))), rh(h), gdk(nan_vec<T>(seq * cols));
      B::template decay_window_forward<T>(ctx_, seq, cols, 0.01, 0.3, 1.5, dxin.get(), gh.get(), h_stride);
      check_close(down(gh), h, r, "decay_window_forward");
      B::template decay_window_backward<T>(ctx_, seq, cols, 0.01, 0.3, 1.5, rh.get(), h_stride, gdk.get());
      check_close(down(gdk), dk, r, "decay_window_backward");
    }
    {
      std::vector<T> ya = y0, sg = f0;
      ref::scale_add<T>(host_, rows, cols, freq.data(), x.data(), ya.data());
      ref::scale_grad<T>(host_, rows, cols, x.data(), y0.data(), sg.data());
      dev<T> gya(y0), dy0(y0), gsg(f0);
      B::template scale_add<T>(ctx_, rows, cols, dfreq.get(), dxin.get(), gya.get());
      check_close(down(gya), ya, r, "scale_add");
      B::template scale_grad<T>(ctx_, rows, cols, dxin.get(), dy0.get(), gsg.get());
      check_close_max(down(gsg), sg, r, "scale_grad");
    }
    {
      const index_t offset = cols / 8, ccols = cols / 2 - 3, dst_ld = cols / 2 + 5;
      const std::vector<T> dst0(std::size_t(rows * dst_ld), T(3));
      std::vector<T> dst = dst0;
      ref::copy_strided<T>(host_, rows, ccols, x.data() + offset, cols, dst.data(), dst_ld);
      dev<T> gdst(dst0);
      B::template copy_strided<T>(ctx_, rows, ccols, dxin.get() + offset, cols, gdst.get(), dst_ld);
      check_same_bits(down(gdst), dst, "copy_strided");
    }
  }

  HYENA_OP_SUITE_COLD void losses(const loss_case& c) {
    const index_t rows = c.rows, vocab = c.vocab, n = rows * vocab;
    const std::vector<T> logits = random_vec<T>(n, c.seed, 5.0), teacher = random_vec<T>(n, c.seed + 1, 5.0);
    std::vector<std::int32_t> targets(static_cast<std::size_t>(rows));
    for (index_t row = 0; row < rows; ++row) targets[std::size_t(row)] = std::int32_t((row * 977 + 11) % vocab);
    targets[std::size_t(4 % rows)] = hb::ignore_target;
    targets[std::size_t(rows - 1)] = hb::ignore_target;
    const double r = rel(c.tol), rs = rel(c.sum_rel);
    dev<T> dl(logits), dt(teacher);
    dev<std::int32_t> dtg(targets);
    CHECK(B::count_targets(ctx_, rows, vocab, dtg.get()) == ref::count_targets(host_, rows, vocab, targets.data()));

    std::vector<T> losses = nan_vec<T>(rows), grad = nan_vec<T>(n);
    double want = ref::cross_entropy<T>(host_, rows, vocab, logits.data(), targets.data(), losses.data(), grad.data(),
                                        T(0.5));
    dev<T> gl(nan_vec<T>(rows)), gg(nan_vec<T>(n));
    double got = B::template cross_entropy<T>(ctx_, rows, vocab, dl.get(), dtg.get(), gl.get(), gg.get(), T(0.5));
    check_scalar(got, want, rs, "cross_entropy sum");
    check_close(down(gl), losses, r, "cross_entropy losses");
    check_close(down(gg), grad, r, "cross_entropy dlogits");
    // Null outputs: only the sum.
    got = B::template cross_entropy<T>(ctx_, rows, vocab, dl.get(), dtg.get(), static_cast<T*>(nullptr),
                                       static_cast<T*>(nullptr), T(1));
    check_scalar(got, want, rs, "cross_entropy sum (null outputs)");

    losses = nan_vec<T>(rows);
    grad = nan_vec<T>(n);
    want = ref::kl_divergence<T>(host_, rows, vocab, teacher.data(), logits.data(), T(2), losses.data(), grad.data(),
                                 T(0.25));
    gl.upload(nan_vec<T>(rows));
    gg.upload(nan_vec<T>(n));
    got = B::template kl_divergence<T>(ctx_, rows, vocab, dt.get(), dl.get(), T(2), gl.get(), gg.get(), T(0.25));
    check_scalar(got, want, rs, "kl_divergence sum");
    check_close(down(gl), losses, r, "kl_divergence losses");
    check_close(down(gg), grad, r, "kl_divergence dstudent");
    // Identical rows: zero loss (clamped at 0).
    want = ref::kl_divergence<T>(host_, rows, vocab, logits.data(), logits.data(), T(1), losses.data(), grad.data(),
                                 T(1));
    got = B::template kl_divergence<T>(ctx_, rows, vocab, dl.get(), dl.get(), T(1), gl.get(), gg.get(), T(1));
    check_scalar(got, want, 0, "kl_divergence of identical rows", opt_.exact ? 0.0 : 1e-5);

    grad = nan_vec<T>(n);
    want = ref::mse<T>(host_, n, logits.data(), teacher.data(), grad.data(), T(0.1));
    gg.upload(nan_vec<T>(n));
    got = B::template mse<T>(ctx_, n, dl.get(), dt.get(), gg.get(), T(0.1));
    check_scalar(got, want, rs, "mse sum");
    check_close(down(gg), grad, r, "mse da");
  }

  HYENA_OP_SUITE_COLD void kl(const kl_case& c) {
    const index_t rows = c.rows, vocab = c.vocab, n = rows * vocab;
    std::vector<T> t = random_vec<T>(n, c.seed, 4.0);
    const std::vector<T> s = random_vec<T>(n, c.seed + 1, 4.0);
    for (index_t i = 0; i + 1 < n; i += 97) t[std::size_t(i)] = t[std::size_t(i + 1)];  // ties: the lower id first
    dev<T> dt(t), ds(s), gl(nan_vec<T>(rows)), gg(nan_vec<T>(n));
    std::vector<T> losses = nan_vec<T>(rows), grad = nan_vec<T>(n);
    double want = 0, got = 0;
    if (c.k == 0) {
      want = ref::reverse_kl_divergence<T>(host_, rows, vocab, t.data(), s.data(), T(2), losses.data(), grad.data(),
                                           T(0.5));
      got = B::template reverse_kl_divergence<T>(ctx_, rows, vocab, dt.get(), ds.get(), T(2), gl.get(), gg.get(),
                                                 T(0.5));
    } else {
      want = ref::topk_kl_divergence<T>(host_, rows, vocab, c.k, t.data(), s.data(), T(1.5), losses.data(),
                                        grad.data(), T(0.5));
      got = B::template topk_kl_divergence<T>(ctx_, rows, vocab, c.k, dt.get(), ds.get(), T(1.5), gl.get(), gg.get(),
                                              T(0.5));
    }
    const char* what = c.k == 0 ? "reverse_kl_divergence" : "topk_kl_divergence";
    check_scalar(got, want, rel(c.sum_rel), std::string(what) + " sum");
    check_close(down(gl), losses, rel(c.tol), std::string(what) + " losses");
    check_close(down(gg), grad, rel(c.tol), std::string(what) + " dstudent");
  }

  HYENA_OP_SUITE_COLD void alignment(const alignment_case& c) {
    const index_t batch = c.batch, seq = c.seq, heads = c.heads, D = c.head_dim;
    const index_t qkv_row = (heads + 2 * c.kv_heads) * D, C = heads * D, ldh = seq + 2;
    const index_t pn = batch * heads * seq * seq;
    const T scale = T(0.35);
    const double r = rel(c.tol);
    const std::vector<T> qkv = random_vec<T>(batch * seq * qkv_row, c.seed);
    std::vector<T> out(std::size_t(batch * seq * C)), lse(std::size_t(batch * heads * seq)), probs = nan_vec<T>(pn);
    ref::causal_attention_forward<T>(host_, batch, seq, heads, c.kv_heads, D, scale, qkv.data(), qkv_row, out.data(),
                                     C, lse.data());
    ref::causal_attention_probs<T>(host_, batch, seq, heads, c.kv_heads, D, scale, qkv.data(), qkv_row, lse.data(),
                                   probs.data());
    dev<T> dqkv(qkv), dlse(lse), gprobs(nan_vec<T>(pn));
    B::template causal_attention_probs<T>(ctx_, batch, seq, heads, c.kv_heads, D, scale, dqkv.get(), qkv_row,
                                          dlse.get(), gprobs.get());
    check_close(down(gprobs), probs, r, "causal_attention_probs");

    const std::vector<double> sums0(std::size_t(heads * seq), 0.25);
    std::vector<double> sums = sums0;
    ref::attention_lag_sums<T>(host_, batch, heads, seq, probs.data(), sums.data());
    dev<T> dprobs(probs);
    dev<double> dsums(sums0);
    B::template attention_lag_sums<T>(ctx_, batch, heads, seq, dprobs.get(), dsums.get());
    check_close(down(dsums), sums, rel(c.sums_rel), "attention_lag_sums");

    const std::vector<T> x0 = random_vec<T>(batch * seq * C, c.seed + 1),
                         x1 = random_vec<T>(batch * seq * C, c.seed + 2), h = random_vec<T>(C * ldh, c.seed + 3, 0.2),
                         bias = random_vec<T>(C, c.seed + 4), dbias0 = random_vec<T>(C, c.seed + 5);
    // d_h: the first seq entries of each row are assigned (NaN before), the rest keeps its 3s.
    std::vector<T> dh0(std::size_t(C * ldh), T(3));
    for (index_t ch = 0; ch < C; ++ch)
      for (index_t k = 0; k < seq; ++k) dh0[std::size_t(ch * ldh + k)] = std::numeric_limits<T>::quiet_NaN();
    std::vector<T> d_x0 = nan_vec<T>(batch * seq * C), d_x1 = nan_vec<T>(batch * seq * C), d_h = dh0,
                   d_bias = dbias0;
    const double want = ref::hyena_attention_alignment<T>(host_, batch, seq, C, D, x0.data(), x1.data(), h.data(), ldh,
                                                          bias.data(), probs.data(), d_x0.data(), d_x1.data(),
                                                          d_h.data(), d_bias.data(), T(0.5));
    dev<T> dx0(x0), dx1(x1), dh(h), db(bias), gdx0(nan_vec<T>(batch * seq * C)), gdx1(nan_vec<T>(batch * seq * C)),
        gdh(dh0), gdb(dbias0);
    const double got = B::template hyena_attention_alignment<T>(ctx_, batch, seq, C, D, dx0.get(), dx1.get(), dh.get(),
                                                                ldh, db.get(), dprobs.get(), gdx0.get(), gdx1.get(),
                                                                gdh.get(), gdb.get(), T(0.5));
    check_scalar(got, want, rel(c.loss_rel), "hyena_attention_alignment loss");
    check_close(down(gdx0), d_x0, r, "hyena_attention_alignment d_x0");
    check_close(down(gdx1), d_x1, r, "hyena_attention_alignment d_x1");
    std::vector<T> got_h, want_h, got_pad, want_pad;
    split_rows(down(gdh), ldh, seq, got_h, got_pad);
    split_rows(d_h, ldh, seq, want_h, want_pad);
    check_close_max(got_h, want_h, r, "hyena_attention_alignment d_h");
    check_same_bits(got_pad, want_pad, "hyena_attention_alignment d_h's padding (untouched)");
    check_close_max(down(gdb), d_bias, r, "hyena_attention_alignment d_bias");
  }

  HYENA_OP_SUITE_COLD void decode(const decode_case& c) {
    const index_t rows = index_t(c.pos.size()), heads = c.heads, D = c.head_dim, max_len = c.max_len,
                  ch = c.channels;
    const double r = rel(c.tol);
    dev<index_t> dpos(c.pos);
    {  // rotary at per-row positions
      const index_t row_stride = heads * D + 7, rot = (D * 3 / 4) / 2 * 2;
      const std::vector<T> x = random_vec<T>(rows * row_stride, c.seed);
      std::vector<T> want = x;
      ref::rotary_at<T>(host_, rows, heads, D, row_stride, rot, 10000.0, c.pos.data(), want.data());
      dev<T> dx(x);
      B::template rotary_at<T>(ctx_, rows, heads, D, row_stride, rot, 10000.0, dpos.get(), dx.get());
      check_close(down(dx), want, r, "rotary_at");
    }
    {  // attention over a KV cache
      const index_t q_row = heads * D + 3, out_row = heads * D, cache = rows * max_len * c.kv_heads * D;
      const std::vector<T> q = random_vec<T>(rows * q_row, c.seed + 1), kc = random_vec<T>(cache, c.seed + 2),
                           vc = random_vec<T>(cache, c.seed + 3);
      std::vector<T> want = nan_vec<T>(rows * out_row);
      ref::attention_decode<T>(host_, rows, heads, c.kv_heads, D, T(0.25), q.data(), q_row, kc.data(), vc.data(),
                               max_len, c.pos.data(), want.data(), out_row);
      dev<T> dq(q), dk(kc), dv(vc), gout(nan_vec<T>(rows * out_row));
      B::template attention_decode<T>(ctx_, rows, heads, c.kv_heads, D, T(0.25), dq.get(), q_row, dk.get(), dv.get(),
                                      max_len, dpos.get(), gout.get(), out_row);
      check_close(down(gout), want, r, "attention_decode");
    }
    {  // the short convolution's step over a ring of the last `kernel` inputs
      const std::vector<T> ring = random_vec<T>(rows * c.kernel * ch, c.seed + 4),
                           w = random_vec<T>(ch * c.kernel, c.seed + 5), b = random_vec<T>(ch, c.seed + 6);
      std::vector<T> want = nan_vec<T>(rows * ch);
      ref::short_conv_step<T>(host_, rows, ch, c.kernel, ring.data(), w.data(), b.data(), c.pos.data(), want.data());
      dev<T> dr(ring), dw(w), db(b), gy(nan_vec<T>(rows * ch));
      B::template short_conv_step<T>(ctx_, rows, ch, c.kernel, dr.get(), dw.get(), db.get(), dpos.get(), gy.get());
      check_close(down(gy), want, r, "short_conv_step");
    }
    {  // the long convolution's step over the history
      const std::vector<T> hist = random_vec<T>(rows * max_len * ch, c.seed + 7),
                           h = random_vec<T>(ch * (max_len + 1), c.seed + 8);
      std::vector<T> want = nan_vec<T>(rows * ch);
      ref::causal_conv_step<T>(host_, rows, ch, hist.data(), max_len, h.data(), max_len + 1, c.pos.data(),
                               want.data());
      dev<T> dhist(hist), dh(h), gy(nan_vec<T>(rows * ch));
      B::template causal_conv_step<T>(ctx_, rows, ch, dhist.get(), max_len, dh.get(), max_len + 1, dpos.get(),
                                      gy.get());
      check_close_max(down(gy), want, r, "causal_conv_step");
    }
    {  // the modal recurrence: prefill, then a step from the reference's state
      const index_t sn = rows * ch * c.modes * 2;
      const std::vector<T> poles = random_vec<T>(ch * c.modes * 2, c.seed + 9, 0.6),
                           res = random_vec<T>(ch * c.modes * 2, c.seed + 10),
                           hist = random_vec<T>(rows * max_len * ch, c.seed + 11),
                           w = random_vec<T>(rows * ch, c.seed + 12);
      std::vector<T> state = nan_vec<T>(sn), y = nan_vec<T>(rows * ch);
      ref::modal_prefill<T>(host_, rows, ch, c.modes, poles.data(), hist.data(), max_len, c.prefill_len, state.data());
      dev<T> dp(poles), dr(res), dhist(hist), dw(w), gstate(nan_vec<T>(sn)), gy(nan_vec<T>(rows * ch));
      B::template modal_prefill<T>(ctx_, rows, ch, c.modes, dp.get(), dhist.get(), max_len, c.prefill_len,
                                   gstate.get());
      check_close_max(down(gstate), state, r, "modal_prefill");
      gstate.upload(state);
      ref::modal_step<T>(host_, rows, ch, c.modes, poles.data(), res.data(), state.data(), w.data(), y.data());
      B::template modal_step<T>(ctx_, rows, ch, c.modes, dp.get(), dr.get(), gstate.get(), dw.get(), gy.get());
      check_close_max(down(gstate), state, r, "modal_step state");
      check_close_max(down(gy), y, r, "modal_step y");
    }
  }

  HYENA_OP_SUITE_COLD void adamw(const adamw_case& c) {
    const std::size_t count = c.sizes.size();
    std::vector<std::vector<T>> p, g, m, v;
    for (std::size_t k = 0; k < count; ++k) {
      const index_t n = c.sizes[k];
      const unsigned seed = c.seed + unsigned(4 * k);
      p.push_back(random_vec<T>(n, seed));
      g.push_back(random_vec<T>(n, seed + 1, 0.1));
      m.push_back(random_vec<T>(n, seed + 2, 0.01));
      std::vector<T> vk = random_vec<T>(n, seed + 3, 0.001);
      for (auto& x : vk) x = std::abs(x);
      v.push_back(vk);
    }
    const hb::adamw_hyper h{0.9, 0.95, 1e-8, 1 - std::pow(0.9, 3), std::sqrt(1 - std::pow(0.95, 3)), 0.7};
    std::vector<dev<T>> bufs;
    bufs.reserve(4 * count);
    for (std::size_t k = 0; k < count; ++k) {
      bufs.emplace_back(p[k]);
      bufs.emplace_back(g[k]);
      bufs.emplace_back(m[k]);
      bufs.emplace_back(v[k]);
    }
    const std::vector<std::vector<T>> g0 = g;
    std::vector<hb::adamw_segment<T>> host_segs, dev_segs;
    for (std::size_t k = 0; k < count; ++k) {
      const double lr = 1e-3 * double(k + 1), decay = 1 - lr * (k == 1 ? 0.0 : 0.1);
      host_segs.push_back({p[k].data(), g[k].data(), m[k].data(), v[k].data(), c.sizes[k], lr, decay});
      dev_segs.push_back({bufs[4 * k].get(), bufs[4 * k + 1].get(), bufs[4 * k + 2].get(), bufs[4 * k + 3].get(),
                          c.sizes[k], lr, decay});
    }
    ref::adamw_step<T>(host_, host_segs.data(), index_t(count), h);
    B::template adamw_step<T>(ctx_, dev_segs.data(), index_t(count), h);
    const double r = rel(c.tol);
    for (std::size_t k = 0; k < count; ++k) {
      INFO("segment " << k);
      check_close(down(bufs[4 * k]), p[k], r, "adamw_step param");
      check_close(down(bufs[4 * k + 2]), m[k], r, "adamw_step m");
      check_close(down(bufs[4 * k + 3]), v[k], r, "adamw_step v");
      check_same_bits(down(bufs[4 * k + 1]), g0[k], "adamw_step grad (read, never written)");
    }
  }

  // What every backend refuses, by name: the size checks the ops share with cpu_ref.
  HYENA_OP_SUITE_COLD void refusals() {
    {  // an embedding id outside [0, vocab) names its position
      const index_t n = 300, dim = 8, vocab = 50;
      std::vector<std::int32_t> ids(std::size_t(n), 1);
      ids[123] = std::int32_t(vocab);
      ids[200] = -5;
      dev<std::int32_t> dids(ids);
      dev<T> table(random_vec<T>(vocab * dim, 1)), y(nan_vec<T>(n * dim));
      CHECK_THROWS_WITH_AS(
          B::template embedding_forward<T>(ctx_, n, dim, vocab, dids.get(), table.get(), y.get()),
          doctest::Contains("position 123"), hyena::error);
    }
    {  // rotary: rot_dims odd, rows shorter than heads * head_dim
      dev<T> x(random_vec<T>(2 * 5 * 3 * 16, 2));
      CHECK_THROWS_AS(B::template rotary_forward<T>(ctx_, 2, 5, 3, 16, 48, 7, 10000.0, x.get()), hyena::error);
      CHECK_THROWS_AS(B::template rotary_forward<T>(ctx_, 2, 5, 3, 16, 10, 8, 10000.0, x.get()), hyena::error);
    }
    {  // a short conv with no taps; a long filter row shorter than seq; a decay window likewise
      dev<T> a(random_vec<T>(64, 3)), b(nan_vec<T>(64));
      CHECK_THROWS_AS(B::template short_conv_forward<T>(ctx_, 1, 8, 4, 0, a.get(), a.get(), a.get(), b.get()),
                      hyena::error);
      CHECK_THROWS_AS(B::template causal_conv_forward<T>(ctx_, 1, 10, 1, a.get(), a.get(), 5, b.get()), hyena::error);
      CHECK_THROWS_AS(B::template decay_window_forward<T>(ctx_, 10, 2, 0.01, 0.3, 1.5, a.get(), b.get(), 9),
                      hyena::error);
    }
    {  // losses: a target outside [0, vocab) names its row; temperatures must be positive, k >= 1
      const index_t rows = 9, vocab = 7;
      std::vector<std::int32_t> targets(std::size_t(rows), 2);
      targets[7] = std::int32_t(vocab);
      dev<std::int32_t> dtg(targets);
      dev<T> logits(random_vec<T>(rows * vocab, 4)), l(nan_vec<T>(rows)), g(nan_vec<T>(rows * vocab));
      CHECK_THROWS_WITH_AS(B::count_targets(ctx_, rows, vocab, dtg.get()), doctest::Contains("row 7"), hyena::error);
      CHECK_THROWS_WITH_AS(
          B::template cross_entropy<T>(ctx_, rows, vocab, logits.get(), dtg.get(), l.get(), g.get(), T(1)),
          doctest::Contains("row 7"), hyena::error);
      CHECK_THROWS_AS(B::template kl_divergence<T>(ctx_, rows, vocab, logits.get(), logits.get(), T(0), l.get(),
                                                   g.get(), T(1)),
                      hyena::error);
      CHECK_THROWS_AS(B::template reverse_kl_divergence<T>(ctx_, rows, vocab, logits.get(), logits.get(), T(0),
                                                           l.get(), g.get(), T(1)),
                      hyena::error);
      CHECK_THROWS_AS(B::template topk_kl_divergence<T>(ctx_, rows, vocab, 0, logits.get(), logits.get(), T(1),
                                                        l.get(), g.get(), T(1)),
                      hyena::error);
    }
  }

 private:
  // Dispatches one pointwise op to the backend X (cpu_ref on host pointers, or B on its own).
  template <class X>
  HYENA_OP_SUITE_COLD static void apply(typename X::context& ctx, const elementwise_case& c, const T* a, const T* b,
                                        const T* bias, T* y) {
    const index_t rows = c.rows, cols = c.cols, n = rows * cols, width = cols / 2;
    switch (c.op) {
      case ew::fill: X::template fill<T>(ctx, n, T(0.25), y); break;
      case ew::copy: X::template copy<T>(ctx, n, a, y); break;
      case ew::add: X::template add<T>(ctx, n, a, b, y); break;
      case ew::axpy: X::template axpy<T>(ctx, n, T(-0.7), a, y); break;
      case ew::scale: X::template scale<T>(ctx, n, T(0.37), y); break;
      case ew::axpby: X::template axpby<T>(ctx, n, T(-1.5), a, T(0.25), y); break;
      case ew::mul: X::template mul<T>(ctx, n, a, b, y); break;
      case ew::add_bias: X::template add_bias<T>(ctx, rows, cols, bias, y); break;
      case ew::bias_grad: X::template bias_grad<T>(ctx, rows, cols, a, y); break;
      case ew::gelu_forward: X::template gelu_forward<T>(ctx, n, a, y); break;
      case ew::gelu_backward: X::template gelu_backward<T>(ctx, n, a, b, y); break;
      case ew::swiglu_forward: X::template swiglu_forward<T>(ctx, rows, width, a, y); break;
      case ew::swiglu_backward: X::template swiglu_backward<T>(ctx, rows, width, a, b, y); break;
      case ew::sum_squares: break;
    }
  }

  double rel(const tolerance& t) const { return opt_.exact ? 0.0 : pick<T>(t) * pick<T>(opt_.slack); }
  double rel(double r) const { return opt_.exact ? 0.0 : r * pick<T>(opt_.slack); }

  // A buffer read back after B's queued work is done.
  template <class V>
  std::vector<V> down(const dev<V>& b) {
    synchronize(ctx_);
    return b.to_host();
  }

  context& ctx_;
  options opt_;
  hb::host_context host_{1};  // cpu_ref's
};

// Runs fn on every case of a table, the case logged (INFO) for its failures.
template <class Case, class Fn>
void each_case(const std::vector<Case>& cases, Fn fn) {
  for (const Case& c : cases) {
    INFO(c);
    fn(c);
  }
}

// Every group's cases on B against cpu_ref, for T; one SUBCASE per group.
template <class B, class T>
void run(typename B::context& ctx, options opt = {}) {
  runner<B, T> r(ctx, opt);
  INFO("backend " << std::string(B::name) << ", " << std::string(std::is_same_v<T, float> ? "float" : "double"));
  SUBCASE("gemm") each_case(gemm_cases, [&](const auto& c) { r.gemm(c); });
  SUBCASE("gemm_bias") each_case(gemm_bias_cases, [&](const auto& c) { r.gemm_bias(c); });
  SUBCASE("elementwise") each_case(elementwise_cases, [&](const auto& c) { r.elementwise(c); });
  SUBCASE("norm") each_case(norm_cases, [&](const auto& c) { r.norm(c); });
  SUBCASE("embedding") each_case(embedding_cases, [&](const auto& c) { r.embedding(c); });
  SUBCASE("rotary") each_case(rotary_cases, [&](const auto& c) { r.rotary(c); });
  SUBCASE("causal softmax") each_case(softmax_cases, [&](const auto& c) { r.softmax(c); });
  SUBCASE("fused causal attention") each_case(attention_cases, [&](const auto& c) { r.attention(c); });
  SUBCASE("short conv") each_case(short_conv_cases, [&](const auto& c) { r.short_conv(c); });
  SUBCASE("causal (FFT) conv") each_case(causal_conv_cases, [&](const auto& c) { r.causal_conv(c); });
  SUBCASE("filter") each_case(filter_cases, [&](const auto& c) { r.filter(c); });
  SUBCASE("losses") each_case(loss_cases, [&](const auto& c) { r.losses(c); });
  SUBCASE("reverse and top-k KL") each_case(kl_cases, [&](const auto& c) { r.kl(c); });
  SUBCASE("alignment") each_case(alignment_cases, [&](const auto& c) { r.alignment(c); });
  SUBCASE("decode") each_case(decode_cases, [&](const auto& c) { r.decode(c); });
  SUBCASE("adamw_step") each_case(adamw_cases, [&](const auto& c) { r.adamw(c); });
  SUBCASE("refusals") r.refusals();
}

}  // namespace hyena::testing::op_suite
