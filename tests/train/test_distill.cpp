#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/student.hpp>
#include <hyena/train/distill.hpp>

#include "../support/corpus.hpp"
#include "../support/model_check.hpp"

using namespace hyena;

namespace {
using teacher_t = models::gpt_neox<backend::cpu>;
using student_t = models::hyena_student<teacher_t>;

models::model_config tiny() {
  auto c = models::gpt_neox_config(256, 32, 2, 4, 64, 32);
  c.hyena_filter_order = 16;
  return c;
}

// A teacher that has learned something (so its activations carry structure).
teacher_t trained_teacher(std::span<const std::int32_t> tokens, backend::host_context& ctx) {
  teacher_t t(tiny());
  rng r(1);
  t.init(r);
  train::trainer_options o;
  o.batch = 4;
  o.seq = 32;
  o.steps = 40;
  o.warmup = 2;
  o.lr = 3e-3;
  o.progress = false;
  train::trainer<teacher_t>(t, o).run(ctx, tokens);
  return t;
}

train::distill_options options() {
  train::distill_options o;
  o.batch = 4;
  o.seq = 32;
  o.progress = false;
  o.stage1_lr = 3e-3;
  o.stage2_lr = 2e-3;
  return o;
}

// Normalised MSE between the student's and the teacher's mixer output at `layer` on one batch.
double mixer_gap(teacher_t& t, student_t& s, backend::host_context& ctx, const tensor<std::int32_t>& batch, index_t layer) {
  std::vector<float> t_in, t_mix, s_in;
  models::hooks<float> ht, hs;
  ht.on_forward = [&](index_t l, models::hook_point p, view<const float> a) {
    if (l != layer) return;
    if (p == models::hook_point::block_input) t_in.assign(a.data, a.data + a.numel());
    if (p == models::hook_point::mixer_output) t_mix.assign(a.data, a.data + a.numel());
  };
  t.reserve(batch.shape()[0], batch.shape()[1], models::mode::infer);
  t.forward(ctx, batch.v(), &ht);
  // Run the student's block `layer` mixer on the teacher's input, as stage 1 does.
  using blk = student_t::block_type;
  blk::cache k;
  arena<float> ka;
  ka.bind(k, s.config(), batch.shape()[0], batch.shape()[1]);
  view<float> in(t_in.data(), {batch.shape()[0], batch.shape()[1], s.config().hidden});
  auto& p = s.parameters().blocks[layer];
  blk::norm::forward(ctx, blk::norm_config(s.config()), p.norm1, k.norm1, in, k.norm1_out);
  blk::mixer::forward(ctx, blk::mixer_config(s.config()), p.mix, k.mix, k.norm1_out, k.mixer_out);
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < t_mix.size(); ++i) {
    err += std::pow(double(k.mixer_out.data[i]) - t_mix[i], 2);
    scale += double(t_mix[i]) * t_mix[i];
  }
  return err / scale;
}
}  // namespace

TEST_CASE("distill: KL between a model and its copy is zero") {
  backend::host_context ctx;
  teacher_t a(tiny()), b(tiny());
  rng r(4);
  a.init(r);
  std::copy(a.parameter_arena().flat().data, a.parameter_arena().flat().data + a.parameter_arena().size(),
            b.parameter_arena().flat().data);
  auto tokens = testing::random_tokens(2, 16, 256, 1);
  a.reserve(2, 16, models::mode::infer);
  b.reserve(2, 16, models::mode::train);
  auto la = a.forward(ctx, tokens.v());
  auto lb = b.forward(ctx, tokens.v());
  CHECK(nn::kl_div_loss<backend::cpu>(ctx, la, lb, 2.0, b.dlogits()) == doctest::Approx(0.0).epsilon(1e-9));
  double g = 0;
  for (index_t i = 0; i < b.dlogits().numel(); ++i) g = std::max(g, double(std::abs(b.dlogits().data[i])));
  CHECK(g < 1e-9);
}

TEST_CASE("distill: stage 1 lowers each layer's activation MSE, bottom to top") {
  auto tokens = testing::toy_corpus(20000);
  std::span<const std::int32_t> span(tokens);
  backend::host_context ctx;
  auto teacher = trained_teacher(span, ctx);
  rng r(2);
  auto student = models::make_student<student_t>(teacher, r);
  auto held_out = testing::random_tokens(4, 32, 256, 77);
  for (index_t i = 0; i < held_out.numel(); ++i) held_out.data()[i] = tokens[5000 + i];
  std::vector<double> before;
  for (index_t l = 0; l < 2; ++l) before.push_back(mixer_gap(teacher, student, ctx, held_out, l));

  auto o = options();
  o.stage1_tokens_per_layer = 40 * 4 * 32;
  train::distiller<teacher_t, student_t> d(teacher, student, o);
  auto res = d.run(ctx, span);
  REQUIRE(res.stage1.size() == 2);
  for (index_t l = 0; l < 2; ++l) {
    double after = mixer_gap(teacher, student, ctx, held_out, l);
    INFO("layer ", l, ": normalised MSE ", before[l], " -> ", after, " (training ", res.stage1[l].first_loss, " -> ",
         res.stage1[l].last_loss, ")");
    CHECK(after < 0.6 * before[l]);
    CHECK(res.stage1[l].last_loss < res.stage1[l].first_loss);
  }
  CHECK(res.stage1_tokens == 2 * 40 * 4 * 32);
}

TEST_CASE("distill: the block-output variant and stage 2 lower their losses; shared weights can be frozen") {
  auto tokens = testing::toy_corpus(20000);
  std::span<const std::int32_t> span(tokens);
  backend::host_context ctx;
  auto teacher = trained_teacher(span, ctx);
  rng r(3);
  auto student = models::make_student<student_t>(teacher, r);
  std::vector<float> mlp_before(student.parameters().blocks[0].ffn.fc_in.weight.data,
                                student.parameters().blocks[0].ffn.fc_in.weight.data + 10);
  auto o = options();
  o.stage1_tokens_per_layer = 25 * 4 * 32;
  o.stage1_target = train::transfer_target::block_output;
  o.stage2_tokens = 30 * 4 * 32;
  o.beta = 0.1;
  o.freeze_shared = true;
  train::distiller<teacher_t, student_t> d(teacher, student, o);
  auto res = d.run(ctx, span, span.subspan(0, 1000));
  for (auto& l : res.stage1) CHECK(l.last_loss < l.first_loss);
  REQUIRE(res.stage2.history.size() == 30);
  CHECK(res.stage2.history.back().loss < res.stage2.history.front().loss);
  // freeze_shared: the MLPs kept the teacher's weights through stage 2
  CHECK(std::equal(mlp_before.begin(), mlp_before.end(), student.parameters().blocks[0].ffn.fc_in.weight.data));
}

TEST_CASE("distill: a student with fewer layers maps onto the teacher evenly; bad maps are rejected") {
  teacher_t teacher(tiny());
  auto c = tiny();
  c.layers = 1;
  student_t student(c);
  train::distiller<teacher_t, student_t> d(teacher, student, options());
  REQUIRE(d.layer_map().size() == 1);
  CHECK(d.layer_map()[0] == 1);
  auto o = options();
  o.layer_map = {5};
  CHECK_THROWS_AS((train::distiller<teacher_t, student_t>(teacher, student, o)), hyena::error);
}
