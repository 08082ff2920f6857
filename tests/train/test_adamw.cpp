#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include <hyena/nn/linear.hpp>
#include <hyena/train/adamw.hpp>

using namespace hyena;
using train::adamw;
using train::param_entry;

namespace {

// Three tensors named so the default rule gives: decay 0.1 / no decay / no decay and lr x0.5.
template <class T>
struct rig {
  tensor<T> w = make_tensor<T>({2, 3}, {0.5, -1.25, 2.0, 0.75, -0.3, 1.1});
  tensor<T> b = make_tensor<T>({3}, {0.1, -0.2, 0.3});
  tensor<T> f = make_tensor<T>({2}, {1.5, -0.5});
  tensor<T> gw{shape{2, 3}}, gb{shape{3}}, gf{shape{2}};
  std::vector<param_entry<T>> entries() {
    return {{"lin.weight", w.v(), gw.v()}, {"lin.bias", b.v(), gb.v()}, {"mixer.filter.pos", f.v(), gf.v()}};
  }
  void set_grads(const std::vector<double>& a, const std::vector<double>& c, const std::vector<double>& d) {
    for (int i = 0; i < 6; ++i) gw.data()[i] = T(a[i]);
    for (int i = 0; i < 3; ++i) gb.data()[i] = T(c[i]);
    for (int i = 0; i < 2; ++i) gf.data()[i] = T(d[i]);
  }
};

const std::vector<std::vector<double>> grads_w = {
    {0.1, -0.2, 0.3, 0.4, -0.5, 0.6}, {-0.3, 0.1, 0.2, 0.05, 0.5, -0.6}, {0.2, 0.2, -0.1, -0.4, 0.3, 0.0}};
const std::vector<std::vector<double>> grads_b = {{0.01, -0.02, 0.03}, {-0.04, 0.0, 0.02}, {0.03, 0.01, -0.05}};
const std::vector<std::vector<double>> grads_f = {{0.7, -0.8}, {0.2, 0.9}, {-0.6, 0.1}};
const double lrs[] = {1e-2, 3e-2, 2e-2};
const train::adamw_config cfg{.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1, .filter_lr_scale = 0.5};

// torch 1.13 torch.optim.AdamW in float64, three param groups (lr x1 wd 0.1, lr x1 wd 0,
// lr x0.5 wd 0), betas (0.9, 0.95), eps 1e-8, the grads and lrs above:
//   for each step: set group lrs, p.grad = g, opt.step()
const double want_w[] = {0.5013311307650419, -1.229981841555701,  1.93767846470835,
                         0.7133030461266942, -0.2956110662534088, 1.0858620311989944};
const double want_b[] = {0.1060796202817144, -0.1660413172634559, 0.26232714803875834};
const double want_f[] = {1.481130725643355, -0.49806808657032764};
const double want_m_w[] = {0.0011, 0.012799999999999995, 0.032299999999999995, -0.003099999999999998,
                           0.03449999999999999, -0.005399999999999999};
const double want_v_w[] = {0.006726250000000006, 0.004280000000000003, 0.006461250000000005,
                           0.015338750000000014, 0.027656250000000025, 0.03334500000000003};

template <class T>
void run_reference_steps(rig<T>& r, adamw<T>& opt) {
  for (int s = 0; s < 3; ++s) {
    r.set_grads(grads_w[s], grads_b[s], grads_f[s]);
    opt.step(lrs[s]);
  }
}

template <class T>
view<T> state(adamw<T>& opt, const std::string& name) {
  for (auto& e : opt.state_tensors())
    if (e.name == name) return e.v;
  FAIL("no state tensor ", name);
  return {};
}

}  // namespace

TEST_CASE("adamw: matches PyTorch AdamW (double)") {
  rig<double> r;
  adamw<double> opt(r.entries(), cfg);
  run_reference_steps(r, opt);
  CHECK(opt.step_count() == 3);
  for (int i = 0; i < 6; ++i) CHECK(r.w.data()[i] == doctest::Approx(want_w[i]).epsilon(1e-13));
  for (int i = 0; i < 3; ++i) CHECK(r.b.data()[i] == doctest::Approx(want_b[i]).epsilon(1e-13));
  for (int i = 0; i < 2; ++i) CHECK(r.f.data()[i] == doctest::Approx(want_f[i]).epsilon(1e-13));
  auto m = state(opt, "m.lin.weight"), v = state(opt, "v.lin.weight");
  for (int i = 0; i < 6; ++i) {
    CHECK(m.data[i] == doctest::Approx(want_m_w[i]).epsilon(1e-13));
    CHECK(v.data[i] == doctest::Approx(want_v_w[i]).epsilon(1e-13));
  }
}

TEST_CASE("adamw: matches PyTorch AdamW (float)") {
  rig<float> r;
  adamw<float> opt(r.entries(), cfg);
  run_reference_steps(r, opt);
  for (int i = 0; i < 6; ++i) CHECK(r.w.data()[i] == doctest::Approx(want_w[i]).epsilon(1e-6));
  for (int i = 0; i < 3; ++i) CHECK(r.b.data()[i] == doctest::Approx(want_b[i]).epsilon(1e-6));
  for (int i = 0; i < 2; ++i) CHECK(r.f.data()[i] == doctest::Approx(want_f[i]).epsilon(1e-6));
}

TEST_CASE("adamw: default grouping rule") {
  CHECK(train::default_no_decay("blocks.0.mixer.in_proj.bias"));
  CHECK(train::default_no_decay("bias"));
  CHECK(train::default_no_decay("blocks.3.norm1.weight"));
  CHECK(train::default_no_decay("final_norm.weight"));
  CHECK(train::default_no_decay("blocks.1.mixer.filter.pos"));
  CHECK(train::default_no_decay("blocks.1.mixer.filter.freq"));
  CHECK(train::default_no_decay("blocks.1.mixer.filter.delta"));
  CHECK_FALSE(train::default_no_decay("blocks.1.mixer.filter.ffn.0.weight"));
  CHECK_FALSE(train::default_no_decay("embed.weight"));
  CHECK_FALSE(train::default_no_decay("blocks.0.mlp.fc1.weight"));
  auto rule = train::default_group_rule(cfg);
  CHECK(rule("embed.weight").weight_decay == 0.1);
  CHECK(rule("embed.weight").lr_scale == 1.0);
  CHECK(rule("blocks.1.mixer.filter.ffn.0.weight").lr_scale == 0.5);
  CHECK(rule("blocks.1.mixer.filter.ffn.0.weight").weight_decay == 0.1);
  CHECK(rule("blocks.1.mixer.filter.pos").weight_decay == 0.0);
  CHECK(rule("blocks.1.mixer.filter.mlp.2.weight").lr_scale == 0.5);
  CHECK(rule("blocks.1.mixer.filter.mlp.0.bias").weight_decay == 0.0);
  CHECK_FALSE(rule("embed.weight").frozen);
}

TEST_CASE("adamw: groups - frozen, lr scale, decay with a zero gradient") {
  auto a = make_tensor<double>({2}, {1.0, -2.0}), b = make_tensor<double>({2}, {3.0, 4.0});
  auto c = make_tensor<double>({2}, {5.0, 6.0}), d = make_tensor<double>({2}, {-7.0, 8.0});
  tensor<double> ga({2}), gb({2}), gc({2}), gd({2});
  ga.zero();
  gc.zero();
  fill_value(gb.v(), 0.5);
  fill_value(gd.v(), 0.5);
  auto rule = [](const std::string& n) {
    if (n == "frozen") return train::param_group{.lr_scale = 1, .weight_decay = 0.5, .frozen = true};
    if (n == "still") return train::param_group{.lr_scale = 0, .weight_decay = 0.5};
    if (n == "decay") return train::param_group{.lr_scale = 2, .weight_decay = 0.25};
    return train::param_group{.lr_scale = 1, .weight_decay = 0};
  };
  adamw<double> opt({{"decay", a.v(), ga.v()}, {"frozen", b.v(), gb.v()}, {"plain", c.v(), gc.v()},
                     {"still", d.v(), gd.v()}},
                    {}, rule);
  CHECK(opt.group(1).frozen);
  opt.step(0.1);
  // Zero grad: Adam's part is 0, so only decoupled decay acts: p * (1 - lr*scale*wd).
  CHECK(a.data()[0] == doctest::Approx(1.0 * (1 - 0.1 * 2 * 0.25)).epsilon(1e-15));
  CHECK(a.data()[1] == doctest::Approx(-2.0 * (1 - 0.1 * 2 * 0.25)).epsilon(1e-15));
  CHECK(b.data()[0] == 3.0);  // frozen despite a gradient
  CHECK(b.data()[1] == 4.0);
  CHECK(c.data()[0] == 5.0);  // zero grad, no decay
  CHECK(d.data()[0] == -7.0);  // lr scale 0
  // Frozen tensors get no state.
  for (auto& e : opt.state_tensors()) CHECK(e.name.find("frozen") == std::string::npos);
  CHECK(opt.state_tensors().size() == 1 + 2 * 3);
}

TEST_CASE("adamw: first step moves each weight by lr against its gradient sign") {
  // With bias correction, step 1 is p -= lr * g / (|g| + eps) = lr * sign(g).
  auto p = make_tensor<float>({3}, {1, 1, 1});
  auto g = make_tensor<float>({3}, {3, -0.001f, 0});
  adamw<float> opt({{"x", p.v(), g.v()}}, {.weight_decay = 0});
  opt.step(0.01);
  CHECK(p.data()[0] == doctest::Approx(0.99).epsilon(1e-6));
  CHECK(p.data()[1] == doctest::Approx(1.01).epsilon(1e-4));
  CHECK(p.data()[2] == 1.0f);
}

TEST_CASE("adamw: state restore continues bit-identically") {
  rig<float> r1, r2;
  adamw<float> a(r1.entries(), cfg), b(r2.entries(), cfg);
  for (int s = 0; s < 2; ++s) {
    r1.set_grads(grads_w[s], grads_b[s], grads_f[s]);
    a.step(lrs[s]);
  }
  // "Checkpoint": params and every state tensor (step included) copied into b.
  std::memcpy(r2.w.data(), r1.w.data(), 6 * sizeof(float));
  std::memcpy(r2.b.data(), r1.b.data(), 3 * sizeof(float));
  std::memcpy(r2.f.data(), r1.f.data(), 2 * sizeof(float));
  auto sa = a.state_tensors(), sb = b.state_tensors();
  REQUIRE(sa.size() == sb.size());
  CHECK(sa[0].name == "step");
  for (std::size_t i = 0; i < sa.size(); ++i) {
    CHECK(sa[i].name == sb[i].name);
    std::memcpy(sb[i].v.data, sa[i].v.data, sa[i].v.numel() * sizeof(float));
  }
  CHECK(b.step_count() == 2);
  r1.set_grads(grads_w[2], grads_b[2], grads_f[2]);
  r2.set_grads(grads_w[2], grads_b[2], grads_f[2]);
  a.step(lrs[2]);
  b.step(lrs[2]);
  CHECK(std::memcmp(r1.w.data(), r2.w.data(), 6 * sizeof(float)) == 0);
  CHECK(std::memcmp(r1.f.data(), r2.f.data(), 2 * sizeof(float)) == 0);
  // And against the uninterrupted reference.
  for (int i = 0; i < 6; ++i) CHECK(r2.w.data()[i] == doctest::Approx(want_w[i]).epsilon(1e-6));
  b.reset();
  CHECK(b.step_count() == 0);
}

TEST_CASE("adamw: entries from a layer's params and grads arenas") {
  using L = nn::linear<backend::cpu_ref, float>;
  L::config c{.in = 3, .out = 2, .bias = true};
  L::params p, g;
  arena<float> pa, ga;
  pa.bind(p, c);
  ga.bind(g, c);
  auto entries = train::param_entries<float>(p, g, c);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].name == "weight");
  CHECK(entries[0].grad.data == g.weight.data);
  CHECK(entries[1].name == "bias");
  adamw<float> opt(entries, cfg);
  CHECK(opt.group(0).weight_decay == 0.1);
  CHECK(opt.group(1).weight_decay == 0.0);
  CHECK(opt.state_bytes() >= sizeof(float) * (1 + 2 * 8));
}

TEST_CASE("adamw: bad input throws hyena::error") {
  tensor<float> p({2, 3}), g({3, 2}), q({2});
  CHECK_THROWS_AS(adamw<float>({{"x", p.v(), g.v()}}), hyena::error);  // shape mismatch
  CHECK_THROWS_AS(adamw<float>({{"x", q.v(), q.v()}, {"x", q.v(), q.v()}}), hyena::error);  // duplicate name
  CHECK_THROWS_AS(adamw<float>({{"x", q.v(), q.v()}}, {.beta1 = 1.0}), hyena::error);
  CHECK_THROWS_AS(adamw<float>({{"x", q.v(), q.v()}}, {.eps = 0}), hyena::error);
  adamw<float> opt({{"x", q.v(), q.v()}});
  CHECK_THROWS_AS(opt.step(-1e-3), hyena::error);
  opt.state_tensors()[0].v.data[0] = 0.5f;  // a corrupt restored step counter
  CHECK_THROWS_AS(opt.step(1e-3), hyena::error);
}
