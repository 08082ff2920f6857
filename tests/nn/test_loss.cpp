#include <hyena/nn/loss.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../support/fixture.hpp"
#include "../support/layer_check.hpp"

using namespace hyena;
using backend::cpu;
using backend::cpu_ref;
using testing::close;

namespace {

template <class T>
tensor<T> random_tensor(shape s, rng& r, double std = 1.0) {
  tensor<T> t(s);
  fill_normal(t.v(), r, std);
  return t;
}

tensor<std::int32_t> random_targets(shape s, index_t vocab, rng& r) {
  tensor<std::int32_t> t(s);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<std::int32_t>(r.below(vocab));
  return t;
}

// Every index i with |a[i] - b[i]| beyond tolerance counts as a mismatch.
template <class T>
index_t mismatches(const T* a, const T* b, index_t n, double rtol, double atol) {
  index_t bad = 0;
  for (index_t i = 0; i < n; ++i) bad += close(a[i], b[i], rtol, atol) ? 0 : 1;
  return bad;
}

// Central differences of `loss()` w.r.t. every entry of x against `analytic`.
template <class F>
void check_fd(const char* what, double* x, const double* analytic, index_t n, F&& loss, double eps = 1e-6) {
  for (index_t i = 0; i < n; ++i) {
    double saved = x[i];
    x[i] = saved + eps;
    double up = loss();
    x[i] = saved - eps;
    double down = loss();
    x[i] = saved;
    double numeric = (up - down) / (2 * eps);
    INFO(what, "[", i, "]: analytic ", analytic[i], " numeric ", numeric);
    CHECK(close(analytic[i], numeric, 1e-6, 1e-9));
  }
}

}  // namespace

TEST_CASE("loss ops: cpu matches cpu_ref (threads, SIMD tails, large vocabularies)") {
  struct size_case {
    index_t rows, vocab;
    double scale;
  };
  for (const size_case sc : {size_case{37, 1003, 3.0}, size_case{300, 64, 1.0}, size_case{5, 7, 10.0},
                             size_case{3, 50257, 4.0}}) {
    const auto rows = sc.rows, vocab = sc.vocab;  // not a structured binding: INFO captures them (clang 14)
    const double scale = sc.scale;
    INFO("rows ", rows, " vocab ", vocab);
    rng r(rows * 7 + vocab);
    auto logits = random_tensor<float>({rows, vocab}, r, scale);
    auto student = random_tensor<float>({rows, vocab}, r, scale);
    auto targets = random_targets({rows}, vocab, r);
    targets.data()[rows / 2] = nn::ignore_index;
    backend::host_context ref_ctx(1), fast_ctx(4);
    std::vector<float> l_ref(rows), l_fast(rows), g_ref(rows * vocab), g_fast(rows * vocab, NAN);

    double t_ref = cpu_ref::cross_entropy(ref_ctx, rows, vocab, logits.data(), targets.data(), l_ref.data(),
                                          g_ref.data(), 0.25f);
    double t_fast = cpu::cross_entropy(fast_ctx, rows, vocab, logits.data(), targets.data(), l_fast.data(),
                                       g_fast.data(), 0.25f);
    CHECK(close(t_fast, t_ref, 1e-6, 1e-6));
    CHECK(mismatches(l_fast.data(), l_ref.data(), rows, 1e-5, 1e-6) == 0);
    CHECK(mismatches(g_fast.data(), g_ref.data(), rows * vocab, 1e-4, 1e-7) == 0);

    for (float tau : {1.0f, 2.0f}) {
      std::fill(g_fast.begin(), g_fast.end(), NAN);
      t_ref = cpu_ref::kl_divergence(ref_ctx, rows, vocab, logits.data(), student.data(), tau, l_ref.data(),
                                     g_ref.data(), 0.5f);
      t_fast = cpu::kl_divergence(fast_ctx, rows, vocab, logits.data(), student.data(), tau, l_fast.data(),
                                  g_fast.data(), 0.5f);
      CHECK(close(t_fast, t_ref, 1e-5, 1e-6));
      CHECK(mismatches(l_fast.data(), l_ref.data(), rows, 1e-4, 1e-5) == 0);
      CHECK(mismatches(g_fast.data(), g_ref.data(), rows * vocab, 1e-4, 1e-7) == 0);
    }

    index_t n = rows * vocab;
    std::fill(g_fast.begin(), g_fast.end(), NAN);
    t_ref = cpu_ref::mse(ref_ctx, n, logits.data(), student.data(), g_ref.data(), 0.1f);
    t_fast = cpu::mse(fast_ctx, n, logits.data(), student.data(), g_fast.data(), 0.1f);
    CHECK(close(t_fast, t_ref, 1e-6, 1e-6));
    CHECK(mismatches(g_fast.data(), g_ref.data(), n, 1e-6, 1e-7) == 0);
  }
}

TEST_CASE("loss ops: null loss and gradient pointers are skipped") {
  rng r(3);
  auto logits = random_tensor<float>({4, 9}, r);
  auto targets = random_targets({4}, 9, r);
  backend::host_context ctx(2);
  std::vector<float> g(36);
  double with = cpu::cross_entropy(ctx, 4, 9, logits.data(), targets.data(), (float*)nullptr, g.data(), 1.0f);
  double without = cpu::cross_entropy(ctx, 4, 9, logits.data(), targets.data(), (float*)nullptr, (float*)nullptr, 1.0f);
  CHECK(with == without);
  double ref = cpu_ref::kl_divergence(ctx, 4, 9, logits.data(), logits.data(), 1.0f, (float*)nullptr, (float*)nullptr, 1.0f);
  CHECK(ref == 0.0);
}

TEST_CASE("cross_entropy_loss: gradient matches central differences (double, both backends)") {
  rng r(11);
  auto logits = random_tensor<double>({2, 3, 7}, r, 2.0);
  auto targets = random_targets({2, 3}, 7, r);
  targets.data()[4] = nn::ignore_index;
  tensor<double> g({2, 3, 7});
  backend::host_context ctx(2);
  nn::cross_entropy_loss<cpu_ref>(ctx, logits.v(), targets.v(), g.v());
  check_fd("dlogits", logits.data(), g.data(), logits.numel(),
           [&] { return nn::cross_entropy_loss<cpu_ref>(ctx, logits.v(), targets.v()); });
  tensor<double> g_fast({2, 3, 7});
  nn::cross_entropy_loss<cpu>(ctx, logits.v(), targets.v(), g_fast.v());
  CHECK(mismatches(g_fast.data(), g.data(), g.numel(), 1e-12, 1e-14) == 0);
}

TEST_CASE("kl_div_loss: gradient matches central differences at tau 1 and 2") {
  for (double tau : {1.0, 2.0}) {
    INFO("tau ", tau);
    rng r(static_cast<std::uint64_t>(20 + tau));
    auto teacher = random_tensor<double>({5, 6}, r, 2.0);
    auto student = random_tensor<double>({5, 6}, r, 2.0);
    tensor<double> g({5, 6}), g_fast({5, 6});
    backend::host_context ctx(2);
    nn::kl_div_loss<cpu_ref>(ctx, teacher.v(), student.v(), tau, g.v());
    check_fd("dstudent", student.data(), g.data(), student.numel(),
             [&] { return nn::kl_div_loss<cpu_ref>(ctx, teacher.v(), student.v(), tau); });
    nn::kl_div_loss<cpu>(ctx, teacher.v(), student.v(), tau, g_fast.v());
    CHECK(mismatches(g_fast.data(), g.data(), g.numel(), 1e-12, 1e-14) == 0);
  }
}

TEST_CASE("reverse_kl_loss and topk_kl_loss: gradients match central differences; cpu matches cpu_ref") {
  for (double tau : {1.0, 2.0}) {
    INFO("tau ", tau);
    rng r(static_cast<std::uint64_t>(40 + tau));
    auto teacher = random_tensor<double>({5, 9}, r, 2.0);
    auto student = random_tensor<double>({5, 9}, r, 2.0);
    tensor<double> g({5, 9}), g_fast({5, 9});
    backend::host_context ctx(2);
    nn::reverse_kl_loss<cpu_ref>(ctx, teacher.v(), student.v(), tau, g.v());
    check_fd("reverse dstudent", student.data(), g.data(), student.numel(),
             [&] { return nn::reverse_kl_loss<cpu_ref>(ctx, teacher.v(), student.v(), tau); });
    nn::reverse_kl_loss<cpu>(ctx, teacher.v(), student.v(), tau, g_fast.v());
    CHECK(mismatches(g_fast.data(), g.data(), g.numel(), 1e-12, 1e-14) == 0);
    for (index_t k : {1, 3, 9, 20}) {
      INFO("k ", k);
      nn::topk_kl_loss<cpu_ref>(ctx, teacher.v(), student.v(), k, tau, g.v());
      check_fd("topk dstudent", student.data(), g.data(), student.numel(),
               [&] { return nn::topk_kl_loss<cpu_ref>(ctx, teacher.v(), student.v(), k, tau); });
      nn::topk_kl_loss<cpu>(ctx, teacher.v(), student.v(), k, tau, g_fast.v());
      CHECK(mismatches(g_fast.data(), g.data(), g.numel(), 1e-12, 1e-14) == 0);
    }
    // k >= vocab: the forward KL.
    CHECK(close(nn::topk_kl_loss<cpu>(ctx, teacher.v(), student.v(), 9, tau),
                nn::kl_div_loss<cpu>(ctx, teacher.v(), student.v(), tau), 1e-12, 1e-14));
    // Identical logits: both are zero.
    CHECK(nn::reverse_kl_loss<cpu>(ctx, teacher.v(), teacher.v(), tau) == doctest::Approx(0.0).epsilon(1e-12));
  }
}

TEST_CASE("mse_loss: gradient matches central differences") {
  rng r(31);
  auto a = random_tensor<double>({3, 4, 5}, r);
  auto b = random_tensor<double>({3, 4, 5}, r);
  tensor<double> g({3, 4, 5});
  backend::host_context ctx(1);
  nn::mse_loss<cpu>(ctx, a.v(), b.v(), g.v());
  check_fd("da", a.data(), g.data(), a.numel(), [&] { return nn::mse_loss<cpu_ref>(ctx, a.v(), b.v()); });
}

TEST_CASE("cross_entropy_loss: known values") {
  backend::host_context ctx(2);
  SUBCASE("uniform logits give log(vocab)") {
    const index_t rows = 6, vocab = 50;
    tensor<float> logits({rows, vocab}), g({rows, vocab});
    fill_value(logits.v(), 3.5f);
    auto targets = make_tensor<std::int32_t>({rows}, {0, 49, 7, 7, 1, 20});
    double loss = nn::cross_entropy_loss<cpu>(ctx, logits.v(), targets.v(), g.v());
    CHECK(loss == doctest::Approx(std::log(50.0)).epsilon(1e-6));
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < vocab; ++j) {
        double expect = (1.0 / vocab - (j == targets.data()[i] ? 1.0 : 0.0)) / rows;
        CHECK(g.data()[i * vocab + j] == doctest::Approx(expect).epsilon(1e-5));
      }
  }
  SUBCASE("a hand-computed row") {
    auto logits = make_tensor<double>({1, 3}, {1, 2, 3});
    auto targets = make_tensor<std::int32_t>({1}, {0});
    double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
    CHECK(nn::cross_entropy_loss<cpu_ref>(ctx, logits.v(), targets.v()) == doctest::Approx(lse - 1.0).epsilon(1e-14));
  }
  SUBCASE("huge logits stay finite") {
    auto logits = make_tensor<float>({1, 3}, {1000.0f, 0.0f, -1000.0f});
    auto targets = make_tensor<std::int32_t>({1}, {1});
    CHECK(nn::cross_entropy_loss<cpu>(ctx, logits.v(), targets.v()) == doctest::Approx(1000.0));
  }
}

TEST_CASE("cross_entropy_loss: ignored rows get no loss and no gradient") {
  rng r(5);
  auto logits = random_tensor<float>({4, 11}, r);
  auto targets = make_tensor<std::int32_t>({4}, {3, nn::ignore_index, 10, nn::ignore_index});
  auto kept_targets = make_tensor<std::int32_t>({2}, {3, 10});
  tensor<float> kept({2, 11});
  std::copy(logits.data(), logits.data() + 11, kept.data());
  std::copy(logits.data() + 22, logits.data() + 33, kept.data() + 11);
  backend::host_context ctx(2);
  tensor<float> g({4, 11}), g_kept({2, 11});
  fill_value(g.v(), NAN);
  double loss = nn::cross_entropy_loss<cpu>(ctx, logits.v(), targets.v(), g.v());
  double expect = nn::cross_entropy_loss<cpu>(ctx, kept.v(), kept_targets.v(), g_kept.v());
  CHECK(loss == doctest::Approx(expect).epsilon(1e-6));  // mean over the 2 counted rows
  for (index_t j = 0; j < 11; ++j) {
    CHECK(g.data()[11 + j] == 0.0f);
    CHECK(g.data()[33 + j] == 0.0f);
    CHECK(g.data()[j] == doctest::Approx(g_kept.data()[j]));
    CHECK(g.data()[22 + j] == doctest::Approx(g_kept.data()[11 + j]));
  }
  auto none = make_tensor<std::int32_t>({4}, {-1, -1, -1, -1});
  CHECK(nn::cross_entropy_loss<cpu_ref>(ctx, logits.v(), none.v(), g.v()) == 0.0);
  CHECK(cpu_ref::sum_squares(ctx, g.numel(), g.data()) == 0.0);
}

TEST_CASE("kl_div_loss: zero for identical logits, never negative") {
  rng r(41);
  backend::host_context ctx(2);
  for (double tau : {1.0, 2.0, 0.5}) {
    auto t = random_tensor<float>({9, 333}, r, 5.0);
    tensor<float> g({9, 333});
    fill_value(g.v(), NAN);
    CHECK(nn::kl_div_loss<cpu>(ctx, t.v(), t.v(), tau, g.v()) == 0.0);
    CHECK(cpu_ref::sum_squares(ctx, g.numel(), g.data()) == 0.0);
    CHECK(nn::kl_div_loss<cpu_ref>(ctx, t.v(), t.v(), tau, g.v()) == 0.0);
    CHECK(cpu_ref::sum_squares(ctx, g.numel(), g.data()) == 0.0);
    // Nearly identical rows: tiny, but not below zero.
    auto s = random_tensor<float>({9, 333}, r, 1e-4);
    for (index_t i = 0; i < s.numel(); ++i) s.data()[i] += t.data()[i];
    std::vector<float> rows_fast(9), rows_ref(9);
    cpu::kl_divergence(ctx, 9, 333, t.data(), s.data(), float(tau), rows_fast.data(), (float*)nullptr, 1.0f);
    cpu_ref::kl_divergence(ctx, 9, 333, t.data(), s.data(), float(tau), rows_ref.data(), (float*)nullptr, 1.0f);
    for (index_t i = 0; i < 9; ++i) {
      CHECK(rows_fast[i] >= 0.0f);
      CHECK(rows_ref[i] >= 0.0f);
      CHECK(rows_fast[i] < 1e-5f);
    }
    auto far = random_tensor<float>({9, 333}, r, 5.0);
    CHECK(nn::kl_div_loss<cpu>(ctx, t.v(), far.v(), tau) > 0.0);
  }
}

TEST_CASE("losses agree with PyTorch (tests/reference/loss_golden.py)") {
  auto fx = testing::fixture::load("loss.json");
  const index_t rows = fx.meta.at("rows").get<index_t>(), vocab = fx.meta.at("vocab").get<index_t>();
  auto run = [&]<class B, class T>() {
    INFO(B::name, " ", sizeof(T) == 4 ? "float" : "double");
    backend::host_context ctx(2);
    tensor<T> logits({rows, vocab}), g({rows, vocab}), teacher({rows, vocab}), student({rows, vocab});
    fx.copy_to<T>("logits", logits.v());
    fx.copy_to<T>("teacher", teacher.v());
    fx.copy_to<T>("student", student.v());
    tensor<std::int32_t> targets({rows});
    auto tv = fx.values<double>("targets");
    for (index_t i = 0; i < rows; ++i) targets.data()[i] = static_cast<std::int32_t>(tv[i]);

    double ce = nn::cross_entropy_loss<B>(ctx, logits.v(), targets.v(), g.v());
    CHECK(close(ce, fx.values<double>("ce")[0], 1e-5, 0));
    CHECK(testing::relative_error(g.data(), fx.values<double>("grad.logits")) <= 1e-5);

    for (double tau : fx.meta.at("taus")) {
      INFO("tau ", tau);
      std::string suffix = "tau" + std::to_string(int(tau));
      double kl = nn::kl_div_loss<B>(ctx, teacher.v(), student.v(), tau, g.v());
      CHECK(close(kl, fx.values<double>("kl." + suffix)[0], 1e-5, 0));
      CHECK(testing::relative_error(g.data(), fx.values<double>("grad.student." + suffix)) <= 1e-5);
    }

    const index_t k = fx.meta.at("topk").get<index_t>();
    for (double tau : fx.meta.at("taus")) {
      INFO("tau ", tau);
      std::string suffix = "tau" + std::to_string(int(tau));
      double rkl = nn::reverse_kl_loss<B>(ctx, teacher.v(), student.v(), tau, g.v());
      CHECK(close(rkl, fx.values<double>("rkl." + suffix)[0], 1e-5, 0));
      CHECK(testing::relative_error(g.data(), fx.values<double>("grad.student.rkl." + suffix)) <= 1e-5);
      double topk = nn::topk_kl_loss<B>(ctx, teacher.v(), student.v(), k, tau, g.v());
      CHECK(close(topk, fx.values<double>("topk." + suffix)[0], 1e-5, 0));
      CHECK(testing::relative_error(g.data(), fx.values<double>("grad.student.topk." + suffix)) <= 1e-5);
    }

    tensor<T> a(fx.shape_of("a")), b(fx.shape_of("b")), ga(fx.shape_of("a"));
    fx.copy_to<T>("a", a.v());
    fx.copy_to<T>("b", b.v());
    double mse = nn::mse_loss<B>(ctx, a.v(), b.v(), ga.v());
    CHECK(close(mse, fx.values<double>("mse")[0], 1e-5, 0));
    CHECK(testing::relative_error(ga.data(), fx.values<double>("grad.a")) <= 1e-5);
  };
  run.operator()<cpu_ref, float>();
  run.operator()<cpu, float>();
  run.operator()<cpu_ref, double>();
  run.operator()<cpu, double>();
}

TEST_CASE("losses: bad inputs throw hyena::error") {
  backend::host_context ctx(1);
  tensor<float> logits({2, 3, 5}), g({2, 3, 5});
  fill_value(logits.v(), 0.0f);
  auto targets = make_tensor<std::int32_t>({2, 3}, {0, 1, 2, 3, 4, 0});
  SUBCASE("targets out of range, naming the value") {
    for (std::int32_t bad : {5, -2, 1000}) {
      targets.data()[3] = bad;
      CHECK_THROWS_WITH_AS(nn::cross_entropy_loss<cpu>(ctx, logits.v(), targets.v(), g.v()),
                           doctest::Contains(("target " + std::to_string(bad)).c_str()), hyena::error);
      CHECK_THROWS_AS(cpu_ref::cross_entropy(ctx, 6, 5, logits.data(), targets.data(), (float*)nullptr,
                                             (float*)nullptr, 1.0f),
                      hyena::error);
    }
  }
  SUBCASE("shape mismatches") {
    auto short_targets = make_tensor<std::int32_t>({2, 2}, {0, 1, 2, 3});
    CHECK_THROWS_AS(nn::cross_entropy_loss<cpu>(ctx, logits.v(), short_targets.v()), hyena::error);
    tensor<float> g_bad({2, 3, 4});
    CHECK_THROWS_AS(nn::cross_entropy_loss<cpu>(ctx, logits.v(), targets.v(), g_bad.v()), hyena::error);
    tensor<float> flat({30});
    auto flat_targets = make_tensor<std::int32_t>({}, {0});
    CHECK_THROWS_AS(nn::cross_entropy_loss<cpu>(ctx, flat.v(), flat_targets.v()), hyena::error);
    tensor<float> other({2, 3, 6});
    CHECK_THROWS_AS(nn::kl_div_loss<cpu>(ctx, logits.v(), other.v(), 1.0), hyena::error);
    CHECK_THROWS_AS(nn::kl_div_loss<cpu>(ctx, logits.v(), logits.v(), 1.0, g_bad.v()), hyena::error);
    CHECK_THROWS_AS(nn::mse_loss<cpu>(ctx, logits.v(), other.v()), hyena::error);
    CHECK_THROWS_AS(nn::mse_loss<cpu>(ctx, logits.v(), logits.v(), g_bad.v()), hyena::error);
  }
  SUBCASE("bad temperature") {
    CHECK_THROWS_AS(nn::kl_div_loss<cpu>(ctx, logits.v(), logits.v(), 0.0), hyena::error);
    CHECK_THROWS_AS(nn::kl_div_loss<cpu>(ctx, logits.v(), logits.v(), -1.0), hyena::error);
  }
  SUBCASE("non-finite losses") {
    logits.data()[7] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(nn::cross_entropy_loss<cpu>(ctx, logits.v(), targets.v(), g.v()),
                         doctest::Contains("loss is not finite"), hyena::error);
    CHECK_THROWS_WITH_AS(nn::cross_entropy_loss<cpu_ref>(ctx, logits.v(), targets.v()),
                         doctest::Contains("loss is not finite"), hyena::error);
    tensor<float> s({2, 3, 5});
    fill_value(s.v(), 0.0f);
    CHECK_THROWS_WITH_AS(nn::kl_div_loss<cpu>(ctx, logits.v(), s.v(), 1.0), doctest::Contains("loss is not finite"),
                         hyena::error);
    CHECK_THROWS_WITH_AS(nn::mse_loss<cpu>(ctx, logits.v(), s.v()), doctest::Contains("loss is not finite"),
                         hyena::error);
    logits.data()[7] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(nn::mse_loss<cpu_ref>(ctx, logits.v(), s.v()), doctest::Contains("loss is not finite"),
                         hyena::error);
  }
}
