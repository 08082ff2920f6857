#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <algorithm>
#include <set>
#include <vector>

#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/student.hpp>
#include <hyena/train/generate.hpp>

using namespace hyena;
using train::sample_token;
using train::sampling;

namespace {

std::vector<double> softmax(const std::vector<float>& l, double temperature) {
  double top = *std::max_element(l.begin(), l.end()), z = 0;
  std::vector<double> p(l.size());
  for (std::size_t i = 0; i < l.size(); ++i) z += p[i] = std::exp((l[i] - top) / temperature);
  for (auto& v : p) v /= z;
  return p;
}

// Frequencies of `draws` samples.
template <class T>
std::vector<double> frequencies(const std::vector<T>& l, const sampling& s, int draws, std::uint64_t seed) {
  rng r(seed);
  std::vector<double> f(l.size(), 0.0);
  for (int i = 0; i < draws; ++i) f[sample_token(l.data(), index_t(l.size()), s, r)] += 1.0 / draws;
  return f;
}

std::vector<float> random_logits(index_t n, rng& r) {
  std::vector<float> l(n);
  for (auto& v : l) v = float(r.normal(0, 2));
  return l;
}

models::model_config tiny_config() { return models::gpt_neox_config(11, 8, 2, 2, 16, 8); }

template <class M>
M tiny_model(const typename M::config_type& c, std::uint64_t seed) {
  M m(c);
  rng r(seed);
  m.init(r);
  // Bigger weights than the init so the distribution is far from uniform.
  auto flat = m.parameter_arena().flat();
  for (index_t i = 0; i < flat.numel(); ++i) flat.data[i] *= 8;
  return m;
}

}  // namespace

TEST_CASE("sample_token: temperature 0 picks the argmax, ties to the lowest id") {
  rng r(1);
  sampling greedy{.temperature = 0};
  std::vector<float> l{0.1f, 2.0f, -1.0f, 2.0f, 1.9f};
  for (int i = 0; i < 10; ++i) CHECK(sample_token(l.data(), 5, greedy, r) == 1);
  std::vector<float> single{-3.0f};
  CHECK(sample_token(single.data(), 1, greedy, r) == 0);
  std::vector<double> d{-1.0, -0.5, -std::numeric_limits<double>::infinity(), -0.25};
  CHECK(sample_token(d.data(), 4, greedy, r) == 3);
}

TEST_CASE("sample_token: top_k = 1 is greedy at any temperature") {
  rng data(2), r(3);
  for (int trial = 0; trial < 50; ++trial) {
    auto l = random_logits(17, data);
    if (trial % 5 == 0) l[3] = l[11] = *std::max_element(l.begin(), l.end()) + 1;  // a tie at the top
    const auto want = sample_token(l.data(), 17, sampling{.temperature = 0}, r);
    CHECK(sample_token(l.data(), 17, sampling{.temperature = 1.5, .top_k = 1}, r) == want);
  }
}

TEST_CASE("sample_token: top-k never draws outside the k best") {
  rng data(4);
  for (index_t k : {2, 3, 5}) {
    auto l = random_logits(20, data);
    std::vector<int> order(20);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
    std::set<int> best(order.begin(), order.begin() + k), seen;
    rng r(5);
    for (int i = 0; i < 3000; ++i) seen.insert(sample_token(l.data(), 20, sampling{.temperature = 3, .top_k = k}, r));
    CHECK(seen == best);  // at temperature 3 every one of the k shows up in 3000 draws
  }
  // The k kept are renormalised: their frequencies follow the softmax restricted to them.
  std::vector<float> l{std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  auto f = frequencies(l, sampling{.top_k = 2}, 20000, 6);
  CHECK(f[0] == doctest::Approx(0.4 / 0.7).epsilon(0.03));
  CHECK(f[1] == doctest::Approx(0.3 / 0.7).epsilon(0.03));
  CHECK(f[2] + f[3] == 0.0);
}

TEST_CASE("sample_token: top-p keeps the smallest set with mass >= p") {
  // Probabilities 0.05, 0.5, 0.15, 0.3 (shuffled ids so order comes from the values); in
  // double, so the sums at the exact boundaries are right to ~1e-16.
  std::vector<double> l{std::log(0.05), std::log(0.5), std::log(0.15), std::log(0.3)};
  auto kept = [&](double p) {
    std::set<int> s;
    auto f = frequencies(l, sampling{.top_p = p}, 4000, 7);
    for (int i = 0; i < 4; ++i)
      if (f[i] > 0) s.insert(i);
    return s;
  };
  CHECK(kept(0.3) == std::set<int>{1});
  CHECK(kept(0.5) == std::set<int>{1});        // 0.5 alone reaches 0.5
  CHECK(kept(0.5 + 1e-6) == std::set<int>{1, 3});
  CHECK(kept(0.8 - 1e-6) == std::set<int>{1, 3});
  CHECK(kept(0.8) == std::set<int>{1, 3});     // 0.5 + 0.3 reaches 0.8 exactly
  CHECK(kept(0.85) == std::set<int>{1, 2, 3});
  CHECK(kept(0.96) == std::set<int>{0, 1, 2, 3});
  auto f = frequencies(l, sampling{.top_p = 0.8}, 20000, 8);
  CHECK(f[1] == doctest::Approx(0.5 / 0.8).epsilon(0.03));
  // top-k first, then top-p over the renormalised survivors: {0.5, 0.3} -> 0.625, 0.375.
  CHECK(frequencies(l, sampling{.top_k = 2, .top_p = 0.6}, 2000, 9)[3] == 0.0);
  CHECK(frequencies(l, sampling{.top_k = 2, .top_p = 0.65}, 2000, 9)[3] > 0.0);
}

TEST_CASE("sample_token: frequencies at temperature 1 (and 2) match the softmax") {
  std::vector<float> l{1.0f, -0.5f, 0.25f, 2.0f, -2.0f, 0.0f};
  for (double t : {1.0, 2.0}) {
    auto p = softmax(l, t);
    auto f = frequencies(l, sampling{.temperature = t}, 40000, 10);
    for (std::size_t i = 0; i < l.size(); ++i) CHECK(std::abs(f[i] - p[i]) < 0.01);
  }
}

TEST_CASE("sample_token: the same seed gives the same tokens") {
  rng data(11);
  auto l = random_logits(50, data);
  sampling s{.temperature = 1.2, .top_k = 20, .top_p = 0.9};
  rng a(12), b(12), c(13);
  std::vector<int> xa, xb, xc;
  for (int i = 0; i < 200; ++i) {
    xa.push_back(sample_token(l.data(), 50, s, a));
    xb.push_back(sample_token(l.data(), 50, s, b));
    xc.push_back(sample_token(l.data(), 50, s, c));
  }
  CHECK(xa == xb);
  CHECK(xa != xc);
}

TEST_CASE("sample_token: bad arguments throw") {
  std::vector<float> l{0.0f, 1.0f};
  rng r(0);
  CHECK_THROWS_AS(sample_token(l.data(), 2, sampling{.temperature = -0.1}, r), error);
  CHECK_THROWS_AS(sample_token(l.data(), 2, sampling{.temperature = std::nan("")}, r), error);
  CHECK_THROWS_AS(sample_token(l.data(), 2, sampling{.top_p = 0.0}, r), error);
  CHECK_THROWS_AS(sample_token(l.data(), 2, sampling{.top_p = 1.5}, r), error);
  CHECK_THROWS_AS(sample_token(l.data(), 2, sampling{.top_k = -1}, r), error);
  CHECK_THROWS_AS(sample_token(l.data(), 0, sampling{}, r), error);
  std::vector<float> bad{0.0f, std::nanf("")};
  CHECK_THROWS_AS(sample_token(bad.data(), 2, sampling{}, r), error);
}

TEST_CASE("generate: greedy equals a step-by-step argmax over the last max_seq tokens") {
  auto c = tiny_config();
  auto m = tiny_model<models::gpt_neox<backend::cpu>>(c, 21);
  backend::host_context ctx(1);
  std::vector<std::int32_t> prompt{1, 2, 3};
  auto out = train::generate(m, ctx, prompt, 12, sampling{.temperature = 0});
  REQUIRE(out.size() == 15);
  CHECK(std::equal(prompt.begin(), prompt.end(), out.begin()));
  // Independent check: each token is the argmax of a fresh forward on its own window.
  models::gpt_neox<backend::cpu> ref(c);
  std::copy(m.parameter_arena().flat().data, m.parameter_arena().flat().data + m.parameter_arena().size(),
            ref.parameter_arena().flat().data);
  ref.reserve(1, 1, models::mode::infer);
  for (std::size_t len = 3; len < out.size(); ++len) {
    const index_t n = std::min<index_t>(index_t(len), c.max_seq);
    tensor<std::int32_t> w(shape{1, n});
    for (index_t i = 0; i < n; ++i) w.data()[i] = out[len - n + i];
    auto logits = ref.forward(ctx, w.v());
    const float* last = logits.data + (n - 1) * c.vocab;
    CHECK(out[len] == std::max_element(last, last + c.vocab) - last);
  }
}

TEST_CASE("generate: deterministic, respects max_new_tokens and the stop token") {
  auto c = tiny_config();
  auto m = tiny_model<models::gpt_neox<backend::cpu>>(c, 22);
  backend::host_context ctx(1);
  sampling s{.temperature = 1.0, .seed = 5};
  auto a = train::generate(m, ctx, {4, 5}, 10, s);
  auto b = train::generate(m, ctx, {4, 5}, 10, s);
  CHECK(a.size() == 12);
  CHECK(a == b);
  s.seed = 6;
  CHECK(train::generate(m, ctx, {4, 5}, 10, s) != a);
  CHECK(train::generate(m, ctx, {4, 5}, 0, s) == std::vector<std::int32_t>{4, 5});
  // Stopping on the third sampled token: it is appended, nothing after it.
  s.seed = 5;
  auto stopped = train::generate(m, ctx, {4, 5}, 10, s, a[4]);
  auto first = std::find(a.begin() + 2, a.end(), a[4]);
  CHECK(std::vector<std::int32_t>(a.begin(), first + 1) == stopped);
  // The model's training-mode sizing is left as it was.
  m.reserve(2, 4, models::mode::train);
  train::generate(m, ctx, {1}, 3, s);
  CHECK(m.current_mode() == models::mode::train);
  CHECK(m.batch() == 2);
  CHECK(m.seq() == 4);
}

TEST_CASE("generate: a Hyena student runs past max_seq deterministically") {
  models::lm_config<nn::hyena_hparams> c(tiny_config(), {.filter_order = 8});
  using student = models::hyena_student<models::gpt_neox<backend::cpu>>;
  auto m = tiny_model<student>(c, 23);
  backend::host_context ctx(1);
  sampling s{.temperature = 0.8, .top_k = 5, .top_p = 0.95, .seed = 1};
  auto a = train::generate(m, ctx, {1, 2, 3}, 2 * c.max_seq, s);
  CHECK(a.size() == std::size_t(3 + 2 * c.max_seq));
  CHECK(a == train::generate(m, ctx, {1, 2, 3}, 2 * c.max_seq, s));
  for (auto t : a) CHECK((t >= 0 && t < c.vocab));
}

TEST_CASE("generate: bad arguments throw") {
  auto c = tiny_config();
  auto m = tiny_model<models::gpt_neox<backend::cpu>>(c, 24);
  backend::host_context ctx(1);
  CHECK_THROWS_AS(train::generate(m, ctx, {}, 3, sampling{}), error);
  CHECK_THROWS_AS(train::generate(m, ctx, {1}, -1, sampling{}), error);
  CHECK_THROWS_AS(train::generate(m, ctx, {1, 11}, 3, sampling{}), error);
  CHECK_THROWS_AS(train::generate(m, ctx, {1}, 3, sampling{.temperature = -1}), error);
  CHECK_THROWS_AS(train::generate(m, ctx, {1}, 3, sampling{.top_p = 0}), error);
  CHECK_THROWS_AS(train::generate(m, ctx, {1}, 3, sampling{.top_p = 1.01}), error);
}
