#include <hyena/nn/hyena.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "../support/fixture.hpp"
#include "../support/layer_check.hpp"

using namespace hyena;

namespace {

nn::hyena_config small(index_t order, index_t hidden = 4, index_t max_seq = 8) {
  return {.hidden = hidden, .order = order, .filter_order = 6, .emb_dim = 5, .filter_layers = 1, .short_filter = 3,
          .max_seq = max_seq, .sin_freq = 1.0};
}

// A hyena operator with its arenas, bound for (batch, seq) at most.
template <class B, class T>
struct op_rig {
  using H = nn::hyena_operator<B, T>;
  typename H::config cfg;
  typename H::params p, g;
  typename H::cache k;
  arena<T> pa, ga, ka;
  typename B::context ctx{};
  op_rig(const typename H::config& c, index_t batch, index_t seq) : cfg(c) {
    pa.bind(p, cfg);
    ga.bind(g, cfg);
    ka.bind(k, cfg, batch, seq);
  }
};

}  // namespace

TEST_CASE("hyena: gradients (input and every parameter) match central differences") {
  testing::check_layer_gradients<nn::hyena_operator>(small(2), 2, 8);
  testing::check_layer_gradients<nn::hyena_operator>(small(3), 2, 8);
  testing::check_layer_gradients<nn::hyena_operator>(small(3), 1, 5);  // L < max_seq
}

TEST_CASE("hyena rank R: gradients match central differences") {
  auto c = small(2);
  c.rank = 2;
  testing::check_layer_gradients<nn::hyena_operator>(c, 2, 8);
  c.rank = 3;
  testing::check_layer_gradients<nn::hyena_operator>(c, 1, 5);  // L < max_seq
}

TEST_CASE("hyena rank R: cpu matches cpu_ref") {
  auto c = small(2, 16, 48);
  c.filter_order = 16;
  c.rank = 4;
  testing::check_layer_parity<nn::hyena_operator>(c, 2, 41);
}

TEST_CASE("hyena rank R: y = out_proj(sum_r x0_r * (h_r conv (x1_r * v) + bias_r x1_r v)), summed directly") {
  // The branches from the forward's own blocks and filters (the short conv and the filter
  // have their own tests), mixed by plain loops in double.
  const index_t batch = 2, seq = 7, D = 4, R = 3;
  auto c = small(2, D, 8);
  c.rank = R;
  CHECK(c.blocks() == 2 * R + 1);
  CHECK(c.convs() == R);
  CHECK(c.in_proj().out == (2 * R + 1) * D);
  CHECK(c.filter().channels == R * D);
  testing::layer_rig<nn::hyena_operator, backend::cpu_ref, double> rig(c, batch, seq);
  testing::randomize(rig, 21);
  rig.forward();
  const index_t n = batch * seq * D;
  auto blk = [&](index_t j, index_t b, index_t t, index_t d) {
    return rig.k.blocks.data[j * n + (b * seq + t) * D + d];
  };
  double err = 0, scale = 0;
  for (index_t b = 0; b < batch; ++b)
    for (index_t t = 0; t < seq; ++t) {
      std::vector<double> gated(std::size_t(D), 0.0);
      for (index_t d = 0; d < D; ++d)
        for (index_t r = 0; r < R; ++r) {
          double conv = rig.p.bias.data[r * D + d] * blk(R + r, b, t, d) * blk(2 * R, b, t, d);
          for (index_t s = 0; s <= t; ++s)
            conv += rig.k.h.data[(r * D + d) * seq + (t - s)] * blk(R + r, b, s, d) * blk(2 * R, b, s, d);
          gated[std::size_t(d)] += blk(r, b, t, d) * conv;
        }
      for (index_t o = 0; o < D; ++o) {
        double y = rig.p.out_proj.bias.data[o];
        for (index_t d = 0; d < D; ++d) y += rig.p.out_proj.weight.data[o * D + d] * gated[std::size_t(d)];
        err = std::max(err, std::abs(y - rig.y.v()(b, t, o)));
        scale = std::max(scale, std::abs(y));
      }
    }
  CHECK(scale > 1e-3);
  CHECK(err <= 1e-12 * scale);
}

TEST_CASE("hyena: cpu matches cpu_ref") {
  auto c = small(2, 16, 48);
  c.filter_order = 16;
  c.emb_dim = 7;
  c.filter_layers = 2;
  testing::check_layer_parity<nn::hyena_operator>(c, 2, 48);
  c.order = 3;
  testing::check_layer_parity<nn::hyena_operator>(c, 2, 37);
}

TEST_CASE("hyena: config from the model's shape and the operator's hyperparameters") {
  model_config m;
  m.hidden = 32;
  m.max_seq = 128;
  nn::hyena_hparams h{.order = 3, .filter_order = 16, .emb_dim = 9, .filter_layers = 1, .short_filter = 4,
                      .sin_freq = 2.0};
  auto c = nn::layer_config<nn::hyena_operator<backend::cpu, float>>(m, h);
  CHECK(c.hidden == 32);
  CHECK(c.order == 3);
  CHECK(c.filter_order == 16);
  CHECK(c.emb_dim == 9);
  CHECK(c.filter_layers == 1);
  CHECK(c.short_filter == 4);
  CHECK(c.max_seq == 128);
  CHECK(c.sin_freq == 2.0);
  CHECK(c.filter().channels == 64);
  CHECK(c.in_proj().out == 128);
}

TEST_CASE_TEMPLATE("hyena: causal in both directions", B, backend::cpu_ref, backend::cpu) {
  // cpu_ref convolves directly (exact zeros); cpu by FFT, where "zero" is rounding noise.
  using T = std::conditional_t<std::is_same_v<B, backend::cpu_ref>, double, float>;
  const double tol = std::is_same_v<B, backend::cpu_ref> ? 0.0 : 1e-5;
  const index_t batch = 2, seq = 12, D = 4;
  testing::layer_rig<nn::hyena_operator, B, T> rig(small(3, D, 16), batch, seq);
  testing::randomize(rig, 9);
  rig.forward();
  std::vector<T> y0(rig.y.data(), rig.y.data() + rig.y.numel());
  double scale = 0;
  for (T v : y0) scale = std::max(scale, std::abs(double(v)));

  for (index_t t : {0, 5, 11}) {
    // Perturbing the input at t changes no output before t (and does change output t).
    auto& r = rig;
    for (index_t b = 0; b < batch; ++b)
      for (index_t d = 0; d < D; ++d) r.x.v()(b, t, d) += T(0.5);
    r.forward();
    double before = 0, at = 0;
    for (index_t b = 0; b < batch; ++b)
      for (index_t s = 0; s < seq; ++s)
        for (index_t d = 0; d < D; ++d) {
          double diff = std::abs(double(r.y.v()(b, s, d)) - double(y0[(b * seq + s) * D + d]));
          if (s < t) before = std::max(before, diff);
          if (s == t) at = std::max(at, diff);
        }
    INFO("t = ", t);
    CHECK(before <= tol * scale);
    CHECK(at > 1e-3 * scale);
    for (index_t b = 0; b < batch; ++b)
      for (index_t d = 0; d < D; ++d) r.x.v()(b, t, d) -= T(0.5);
    r.forward();

    // The input gradient of output position t is zero after t.
    fill_value(r.dy.v(), T(0));
    for (index_t b = 0; b < batch; ++b)
      for (index_t d = 0; d < D; ++d) r.dy.v()(b, t, d) = T(1);
    r.backward();
    double after = 0, upto = 0;
    for (index_t b = 0; b < batch; ++b)
      for (index_t s = 0; s < seq; ++s)
        for (index_t d = 0; d < D; ++d) {
          double& m = s > t ? after : upto;
          m = std::max(m, std::abs(double(r.dx.v()(b, s, d))));
        }
    CHECK(after <= tol * upto);
    CHECK(upto > 0);
  }
}

TEST_CASE_TEMPLATE("hyena: infer gives forward's output bit for bit, in a fraction of the memory", B, backend::cpu_ref,
                   backend::cpu) {
  // Orders 2 and 3 at rank 1, and rank 3; a full-length and a shorter input (the buffers are
  // sized for max_seq); the output poisoned with NaN before infer writes it.
  using H = nn::hyena_operator<B, float>;
  auto c3 = small(3, 16, 24), cr = small(2, 16, 24);
  cr.rank = 3;
  for (const auto& c : {small(2, 16, 24), c3, cr})
    for (index_t seq : {index_t(24), index_t(9)}) {
      CAPTURE(c.order);
      CAPTURE(c.rank);
      CAPTURE(seq);
      op_rig<B, float> rig(c, 2, 24);
      typename H::infer_cache ik;
      arena<float> ia;
      ia.bind(ik, c, index_t(2), index_t(24));
      rng r(9);
      H::init(c, rig.p, r);
      tensor<float> x({2, seq, 16}), y({2, seq, 16}), y_infer({2, seq, 16});
      fill_normal(x.v(), r);
      H::forward(rig.ctx, c, rig.p, rig.k, x.v(), y.v());
      fill_value(y_infer.v(), std::numeric_limits<float>::quiet_NaN());
      H::infer(rig.ctx, c, rig.p, ik, x.v(), y_infer.v());
      index_t differ = 0;
      for (index_t i = 0; i < y.numel(); ++i) differ += y.data()[i] != y_infer.data()[i];
      CHECK(differ == 0);
      CHECK(ia.bytes() * 2 < rig.ka.bytes());
    }
}

TEST_CASE("hyena: a shorter input than max_seq, with a cache sized for more") {
  // Causality plus a filter that only uses its first L taps: the outputs for L = 5 are the
  // first 5 outputs for the longer input, whatever follows.
  using R = op_rig<backend::cpu, float>;
  using H = R::H;
  R rig(small(3, 8, 16), 2, 16);
  rng r(4);
  H::init(rig.cfg, rig.p, r);
  tensor<float> x_long({2, 16, 8}), y_long({2, 16, 8}), x_short({1, 5, 8}), y_short({1, 5, 8});
  fill_normal(x_long.v(), r);
  for (index_t t = 0; t < 5; ++t)
    for (index_t d = 0; d < 8; ++d) x_short.v()(0, t, d) = x_long.v()(1, t, d);
  H::forward(rig.ctx, rig.cfg, rig.p, rig.k, x_long.v(), y_long.v());
  H::forward(rig.ctx, rig.cfg, rig.p, rig.k, x_short.v(), y_short.v());
  double err = 0, ref = 0;
  for (index_t t = 0; t < 5; ++t)
    for (index_t d = 0; d < 8; ++d) {
      err = std::max(err, double(std::abs(y_short.v()(0, t, d) - y_long.v()(1, t, d))));
      ref = std::max(ref, double(std::abs(y_long.v()(1, t, d))));
    }
  CHECK(err <= 1e-5 * ref);
  // Backward at the shorter length runs too.
  tensor<float> dy({1, 5, 8}), dx({1, 5, 8});
  fill_normal(dy.v(), r);
  H::backward(rig.ctx, rig.cfg, rig.p, rig.k, dy.v(), dx.v(), rig.g);
  CHECK(std::isfinite(dx.v()(0, 4, 7)));
}

TEST_CASE("hyena: bad configs and inputs throw hyena::error") {
  using R = op_rig<backend::cpu, float>;
  using H = R::H;
  R rig(small(2), 1, 8);
  tensor<float> x({1, 9, 4}), y({1, 9, 4});
  CHECK_THROWS_AS(H::forward(rig.ctx, rig.cfg, rig.p, rig.k, x.v(), y.v()), hyena::error);  // L > max_seq
  tensor<float> x2({1, 8, 5}), y2({1, 8, 5});
  CHECK_THROWS_AS(H::forward(rig.ctx, rig.cfg, rig.p, rig.k, x2.v(), y2.v()), hyena::error);  // width 5 != 4
  auto order1 = small(1);
  rng r(1);
  CHECK_THROWS_AS(order1.validate(), hyena::error);
  CHECK_THROWS_AS(H::init(order1, rig.p, r), hyena::error);
  tensor<float> x3({1, 8, 4}), y3({1, 8, 4});
  CHECK_THROWS_AS(H::forward(rig.ctx, order1, rig.p, rig.k, x3.v(), y3.v()), hyena::error);
  auto rank0 = small(2), rank_at_order3 = small(3);
  rank0.rank = 0;
  rank_at_order3.rank = 2;
  CHECK_THROWS_AS(rank0.validate(), hyena::error);
  CHECK_THROWS_AS(rank_at_order3.validate(), hyena::error);
  CHECK_THROWS_AS((nn::hyena_hparams{.order = 3, .rank = 2}.validate()), hyena::error);
  // A cache bound for fewer rows than the input.
  tensor<float> x4({2, 8, 4}), y4({2, 8, 4});
  CHECK_THROWS_AS(H::forward(rig.ctx, rig.cfg, rig.p, rig.k, x4.v(), y4.v()), hyena::error);
}

TEST_CASE_TEMPLATE("hyena: matches the PyTorch reference (fixtures/hyena.json)", B, backend::cpu_ref, backend::cpu) {
  auto fx = testing::fixture::load("hyena.json");
  auto m = fx.meta;
  nn::hyena_config c{.hidden = m["hidden"], .order = m["order"], .filter_order = m["filter_order"],
                     .emb_dim = m["emb_dim"], .filter_layers = m["filter_layers"], .short_filter = m["short_filter"],
                     .max_seq = m["max_seq"], .sin_freq = 1.0};
  const index_t batch = m["batch"], seq = m["seq"];
  op_rig<B, float> rig(c, batch, seq);
  using H = typename op_rig<B, float>::H;
  index_t loaded = 0;
  for_each_tensor<float>(rig.p, [&](const std::string& n, view<float>& v, const shape& s) {
    INFO("parameter ", n);
    REQUIRE(fx.has(n));
    CHECK(fx.shape_of(n) == s);
    fx.copy_to(n, v);
    ++loaded;
  }, c);
  CHECK(loaded == 14);
  tensor<float> x(fx.shape_of("input")), y(fx.shape_of("input")), dy(fx.shape_of("r")), dx(fx.shape_of("input"));
  fx.copy_to("input", x.v());
  fx.copy_to("r", dy.v());
  H::forward(rig.ctx, c, rig.p, rig.k, x.v(), y.v());
  H::backward(rig.ctx, c, rig.p, rig.k, dy.v(), dx.v(), rig.g);

  const double tol = 1e-5;
  auto expect = [&](const std::string& name, const float* got) {
    double e = testing::relative_error(got, fx.values<double>(name));
    INFO(name, ": relative error ", e);
    CHECK(e <= tol);
  };
  expect("h", rig.k.h.data);
  expect("output", y.data());
  expect("grad.input", dx.data());
  for_each_tensor<float>(rig.g, [&](const std::string& n, view<float>& v, const shape&) { expect("grad." + n, v.data); }, c);

  // The positional table the script wrote is safari's initial one: our init must agree.
  typename H::params fresh;
  arena<float> fa;
  fa.bind(fresh, c);
  rng r(0);
  H::init(c, fresh, r);
  expect("filter.pos", fresh.filter.pos.data);
}
