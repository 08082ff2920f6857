#include <hyena/nn/embedding.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../support/layer_check.hpp"

using namespace hyena;

namespace {

// Everything one embedding needs: the generic rig takes float inputs, this one takes ids.
template <class B, class T>
struct emb_rig {
  using L = nn::embedding<B, T>;
  typename L::config cfg;
  typename B::context ctx{};
  typename L::params p, g;
  typename L::cache k;
  arena<T> pa, ga;
  tensor<std::int32_t> ids;
  tensor<T> y, dy;

  emb_rig(typename L::config c, index_t batch, index_t seq, std::uint64_t seed) : cfg(c) {
    pa.bind(p, cfg);
    ga.bind(g, cfg);
    ids = tensor<std::int32_t>(L::input_shape(cfg, batch, seq));
    y = tensor<T>(L::output_shape(cfg, batch, seq));
    dy = tensor<T>(L::output_shape(cfg, batch, seq));
    rng r(seed);
    L::init(cfg, p, r);
    // Fewer distinct ids than tokens, so ids repeat and their gradients add up.
    for (index_t i = 0; i < ids.numel(); ++i) ids.data()[i] = std::int32_t(r.below(cfg.vocab));
    ids.data()[0] = ids.data()[ids.numel() - 1];
    fill_normal(dy.v(), r);
    fill_normal(g.weight, r);  // grads accumulate onto what is there
  }
  void forward() { L::forward(ctx, cfg, p, k, ids.v(), y.v()); }
  void backward() { L::backward(ctx, cfg, p, k, dy.v(), g); }
};

}  // namespace

TEST_CASE("embedding: gradients match central differences") {
  emb_rig<backend::cpu_ref, double> rig({.vocab = 7, .dim = 5}, 2, 6, 1);
  std::vector<double> before(rig.g.weight.data, rig.g.weight.data + rig.g.weight.numel());
  rig.forward();
  rig.backward();
  auto loss = [&] {
    rig.forward();
    double s = 0;
    for (index_t i = 0; i < rig.y.numel(); ++i) s += rig.y.data()[i] * rig.dy.data()[i];
    return s;
  };
  const double eps = 1e-6;
  double* w = rig.p.weight.data;
  for (index_t i = 0; i < rig.p.weight.numel(); ++i) {  // every table entry, used or not
    double saved = w[i];
    w[i] = saved + eps;
    double up = loss();
    w[i] = saved - eps;
    double down = loss();
    w[i] = saved;
    double numeric = (up - down) / (2 * eps), analytic = rig.g.weight.data[i] - before[i];
    INFO("weight[", i, "]: analytic ", analytic, " numeric ", numeric);
    CHECK(testing::close(analytic, numeric, 1e-6, 1e-8));
  }
}

TEST_CASE("embedding: cpu matches cpu_ref, threaded") {
  const nn::embedding_config c{.vocab = 50, .dim = 67};
  emb_rig<backend::cpu_ref, float> ref(c, 3, 40, 2);
  emb_rig<backend::cpu, float> fast(c, 3, 40, 2);
  fast.ctx = backend::host_context(3);
  fill_value(fast.y.v(), std::numeric_limits<float>::quiet_NaN());
  ref.forward();
  fast.forward();
  ref.backward();
  fast.backward();
  index_t differ = 0;
  for (index_t i = 0; i < ref.y.numel(); ++i) differ += !(fast.y.data()[i] == ref.y.data()[i]);
  CHECK(differ == 0);  // a copy is exact
  index_t bad = 0;
  for (index_t i = 0; i < ref.g.weight.numel(); ++i)
    bad += !testing::close(fast.g.weight.data[i], ref.g.weight.data[i], 1e-6, 1e-6);
  CHECK(bad == 0);
}

TEST_CASE("embedding: known values") {
  using L = nn::embedding<backend::cpu, float>;
  L::config c{.vocab = 3, .dim = 2};
  L::params p, g;
  arena<float> pa, ga;
  pa.bind(p, c);
  ga.bind(g, c);
  float table[] = {1, 2, 3, 4, 5, 6};
  std::copy(table, table + 6, p.weight.data);
  auto ids = make_tensor<std::int32_t>({1, 3}, {2, 0, 2});
  tensor<float> y({1, 3, 2});
  L::cache k;
  backend::host_context ctx;
  L::forward(ctx, c, p, k, ids.v(), y.v());
  std::vector<float> want = {5, 6, 1, 2, 5, 6};
  for (int i = 0; i < 6; ++i) CHECK(y.data()[i] == want[i]);
  auto dy = make_tensor<float>({1, 3, 2}, {1, 10, 100, 1000, 2, 20});
  L::backward(ctx, c, p, k, dy.v(), g);
  std::vector<float> dwant = {100, 1000, 0, 0, 3, 30};  // row 2 used twice: 1+2, 10+20
  for (int i = 0; i < 6; ++i) CHECK(g.weight.data[i] == dwant[i]);
}

TEST_CASE("embedding: init and config") {
  model_config m;
  m.vocab = 300;
  m.hidden = 40;
  auto c = nn::embedding_config::from(m);
  CHECK(c.vocab == 300);
  CHECK(c.dim == 40);
  nn::embedding<backend::cpu, double>::params p;
  arena<double> pa;
  pa.bind(p, c);
  CHECK(p.weight.shape == shape{300, 40});
  rng r(4);
  nn::embedding<backend::cpu, double>::init(c, p, r);
  double s2 = 0;
  for (index_t i = 0; i < p.weight.numel(); ++i) s2 += p.weight.data[i] * p.weight.data[i];
  CHECK(std::sqrt(s2 / double(p.weight.numel())) == doctest::Approx(0.02).epsilon(0.05));  // normal, std 0.02
}

TEST_CASE("embedding: out-of-range ids throw hyena::error naming the id and vocab") {
  auto check_backend = [](auto backend_tag) {
    using L = nn::embedding<decltype(backend_tag), float>;
    typename L::config c{.vocab = 10, .dim = 4};
    typename L::params p;
    arena<float> pa;
    pa.bind(p, c);
    typename L::cache k;
    backend::host_context ctx;
    tensor<float> y({1, 3, 4});
    for (std::int32_t bad : {10, -1, 12345}) {
      auto ids = make_tensor<std::int32_t>({1, 3}, {0, bad, 1});
      std::string msg;
      try {
        L::forward(ctx, c, p, k, ids.v(), y.v());
      } catch (const hyena::error& e) {
        msg = e.what();
      }
      INFO(msg);
      CHECK(msg.find("id " + std::to_string(bad)) != std::string::npos);
      CHECK(msg.find("10") != std::string::npos);
    }
    auto ids = make_tensor<std::int32_t>({1, 3}, {0, 1, 2});
    tensor<float> y_short({1, 2, 4}), y_wide({1, 3, 5});
    CHECK_THROWS_AS(L::forward(ctx, c, p, k, ids.v(), y_short.v()), hyena::error);  // fewer rows than ids
    CHECK_THROWS_AS(L::forward(ctx, c, p, k, ids.v(), y_wide.v()), hyena::error);   // wrong width
  };
  check_backend(backend::cpu_ref{});
  check_backend(backend::cpu{});
}
