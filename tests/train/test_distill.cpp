#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/llama.hpp>
#include <hyena/models/student.hpp>
#include <hyena/train/distill.hpp>

#include <cmath>
#include <filesystem>
#include <limits>

#include "../support/corpus.hpp"
#include "../support/model_check.hpp"

using namespace hyena;

namespace {
using teacher_t = models::gpt_neox<backend::cpu>;
using student_t = models::hyena_student<teacher_t>;
constexpr nn::hyena_hparams small_hyena{.filter_order = 16};

models::model_config tiny() { return models::gpt_neox_config(256, 32, 2, 4, 64, 32); }

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
  o.train.batch = 4;
  o.train.seq = 32;
  o.train.progress = false;
  o.train.steps = 0;
  o.train.lr = 2e-3;
  o.stage1_lr = 3e-3;
  o.attention.filter_fit_steps = 100;
  o.attention.batches = 2;
  return o;
}

// Every parameter of a model as one flat copy.
template <class M>
std::vector<float> flat_params(M& m) {
  auto f = m.parameter_arena().flat();
  return std::vector<float>(f.data, f.data + f.numel());
}

std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("hyena_test_distill_" + name);
  std::filesystem::remove_all(p);
  return p.string();
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

TEST_CASE("distill: attention init maps a uniform-attention teacher to its closed-form Toeplitz filter") {
  // q and k weights 0: every attention row is uniform over its past, P[t, s] = 1 / (t + 1),
  // so the mean weight at lag k over t = k .. L-1 is (1 / (L - k)) sum_{t >= k} 1 / (t + 1).
  const index_t L = 16, D = 16;
  // GQA (2 query heads per kv head); max_seq 64 keeps the filter's decay window mild over 16.
  auto c = models::llama_config(256, D, 1, 4, 2, 32, 64);
  models::llama<backend::cpu> teacher(c);
  rng r(3);
  teacher.init(r);
  auto& att = teacher.block_parameters(0).mix;
  const index_t Dh = D / 4, qk_rows = (4 + 2) * Dh;
  std::fill(att.qkv.weight.data, att.qkv.weight.data + qk_rows * D, 0.0f);
  backend::host_context ctx(1);
  auto corpus = testing::toy_corpus(4000);
  auto profile = train::measure_lag_profile(teacher, ctx, std::span<const std::int32_t>(corpus), 2, L, 3, 9);
  for (index_t h = 0; h < 4; ++h)
    for (index_t k = 0; k < L; ++k) {
      double expect = 0;
      for (index_t t = k; t < L; ++t) expect += 1.0 / double(t + 1);
      expect /= double(L - k);
      CHECK(profile.at(0, h, k) == doctest::Approx(expect).epsilon(1e-5));
    }

  using S = models::hyena_student<models::llama<backend::cpu>>;
  // Rank R: branch 0 as at rank 1, branches r > 0 off (x0_r = 0) with x1_r about 1.
  for (index_t R : {1, 3}) {
    INFO("rank ", R);
    auto student = models::make_student<S>(teacher, r, {.filter_order = 32, .rank = R});
    train::attention_init_options o;
    o.filter_fit_steps = 600;
    auto errors = train::init_student_from_attention(ctx, teacher, student, profile, {0}, o);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] < 0.02);
    auto& p = student.block_parameters(0).mix;
    // v rows are V's rows of the channel's kv head; gates are 1; the short conv is the identity.
    for (index_t ch = 0; ch < D; ++ch) {
      const index_t kv = (ch / Dh) / 2, src = (4 + 2 + kv) * Dh + ch % Dh;
      CHECK(std::equal(p.in_proj.weight.data + (2 * R * D + ch) * D, p.in_proj.weight.data + (2 * R * D + ch + 1) * D,
                       att.qkv.weight.data + src * D));
      for (index_t j = 0; j < 2 * R; ++j) {
        auto zero = [](float w) { return w == 0.0f; };
        const bool gate = j == 0 || j == R, off = j > 0 && j < R;
        CHECK(p.in_proj.bias.data[j * D + ch] == (off ? 0.0f : 1.0f));
        CHECK(std::all_of(p.in_proj.weight.data + (j * D + ch) * D, p.in_proj.weight.data + (j * D + ch + 1) * D,
                          zero) == (gate || off));
      }
    }
    CHECK(std::equal(p.out_proj.weight.data, p.out_proj.weight.data + D * D, att.out.weight.data));
    for (index_t ch = 0; ch < (2 * R + 1) * D; ++ch) CHECK(p.short_filter.weight.data[ch * 3 + 2] == 1.0f);

    // The student's mixer output is the Toeplitz attention O (T_hbar (V x)) within the fit error.
    using blk = S::block_type;
    blk::cache k;
    arena<float> ka;
    ka.bind(k, student.config(), 1, L);
    tensor<float> x({1, L, D});
    fill_normal(x.v(), r);
    blk::mixer::forward(ctx, blk::mixer_config(student.config()), p, k.mix, x.v(), k.mixer_out);
    std::vector<double> v(std::size_t(L * D)), mixed(std::size_t(L * D), 0.0);
    for (index_t t = 0; t < L; ++t)
      for (index_t ch = 0; ch < D; ++ch) {
        const index_t src = (4 + 2 + (ch / Dh) / 2) * Dh + ch % Dh;
        double acc = 0;
        for (index_t i = 0; i < D; ++i) acc += double(att.qkv.weight.data[src * D + i]) * x.data()[t * D + i];
        v[std::size_t(t * D + ch)] = acc;
      }
    for (index_t t = 0; t < L; ++t)
      for (index_t ch = 0; ch < D; ++ch)
        for (index_t s = 0; s <= t; ++s) mixed[std::size_t(t * D + ch)] += profile.at(0, ch / Dh, t - s) * v[std::size_t(s * D + ch)];
    double err = 0, norm = 0;
    for (index_t t = 0; t < L; ++t)
      for (index_t o2 = 0; o2 < D; ++o2) {
        double y = 0;
        for (index_t ch = 0; ch < D; ++ch) y += double(att.out.weight.data[o2 * D + ch]) * mixed[std::size_t(t * D + ch)];
        err += std::pow(double(k.mixer_out.data[t * D + o2]) - y, 2);
        norm += y * y;
      }
    INFO("relative output error ", std::sqrt(err / norm));
    CHECK(std::sqrt(err / norm) < 0.1);
  }
}

TEST_CASE("distill: taylor branches add gamma hbar (q' . k') / sqrt(d) to the mixing matrix, rotary included") {
  // Branches 1.. of a rank-R student started as score terms: their summed mixing matrix
  // sum_r x0_r[t] (h_r[t-s] + [t=s] D_r) x1_r[s] of channel c is the first-order softmax term
  // gamma hbar_head(c)[t-s] q'_t . k'_s / sqrt(d), with q', k' the teacher's rotated q and k.
  const index_t L = 12, D = 16, heads = 4, Dh = 4;
  auto c = models::llama_config(256, D, 1, heads, 2, 32, 64);  // GQA, every coordinate rotated
  models::llama<backend::cpu> teacher(c);
  rng r(5);
  teacher.init(r);
  auto& att = teacher.block_parameters(0).mix;
  for (index_t i = 0; i < att.qkv.weight.numel(); ++i) att.qkv.weight.data[i] *= 10.0f;  // sizeable q, k
  backend::host_context ctx(1);
  auto corpus = testing::toy_corpus(4000);
  auto profile = train::measure_lag_profile(teacher, ctx, std::span<const std::int32_t>(corpus), 2, L, 3, 9);
  using S = models::hyena_student<models::llama<backend::cpu>>;
  const auto terms = train::rotary_score_terms(Dh, Dh, c.rotary_base);
  REQUIRE(terms.size() == 2 * Dh);
  const index_t R = 1 + index_t(terms.size());
  auto student = models::make_student<S>(teacher, r, {.filter_order = 32, .rank = R});
  train::attention_init_options o;
  o.filter_fit_steps = 800;
  o.branches = train::branch_init::taylor;
  o.taylor_scale = 0.5;
  auto errors = train::init_student_from_attention(ctx, teacher, student, profile, {0}, o);
  INFO("filter fit error ", errors[0]);
  CHECK(errors[0] < 0.05);

  tensor<float> x({1, L, D}), y({1, L, D});
  fill_normal(x.v(), r);
  using sblk = S::block_type;
  sblk::cache sk;
  arena<float> ska;
  ska.bind(sk, student.config(), 1, L);
  auto& p = student.block_parameters(0).mix;
  sblk::mixer::forward(ctx, sblk::mixer_config(student.config()), p, sk.mix, x.v(), y.v());
  using tblk = models::llama<backend::cpu>::block_type;
  tblk::cache tk;
  arena<float> tka;
  tka.bind(tk, teacher.config(), 1, L);
  tblk::mixer::forward(ctx, tblk::mixer_config(teacher.config()), att, tk.mix, x.v(), y.v());
  const float* qkv = tk.mix.qkv.data;  // (1, L, (heads + 2 kv) Dh), q and k rotated
  const index_t qkv_dim = (heads + 2 * 2) * Dh, n = L * D;
  double err = 0, norm = 0;
  for (index_t ch = 0; ch < D; ++ch) {
    const index_t head = ch / Dh, kv = head / 2;
    for (index_t t = 0; t < L; ++t)
      for (index_t s0 = 0; s0 <= t; ++s0) {
        double m = 0;
        for (index_t b = 1; b < R; ++b) {
          const double hb = sk.mix.h.data[(b * D + ch) * L + (t - s0)] + (t == s0 ? p.bias.data[b * D + ch] : 0.0f);
          m += double(sk.mix.blocks.data[b * n + t * D + ch]) * hb * sk.mix.blocks.data[(R + b) * n + s0 * D + ch];
        }
        double qk = 0;
        for (index_t i = 0; i < Dh; ++i)
          qk += double(qkv[t * qkv_dim + head * Dh + i]) * qkv[s0 * qkv_dim + (heads + kv) * Dh + i];
        const double expect = 0.5 * profile.at(0, head, t - s0) * qk / std::sqrt(double(Dh));
        err += (m - expect) * (m - expect);
        norm += expect * expect;
      }
  }
  INFO("relative error of the taylor branches' mixing matrix ", std::sqrt(err / norm));
  CHECK(norm > 0);
  CHECK(std::sqrt(err / norm) < 0.1);  // a wrong sign of the sine terms gives about 1
}

TEST_CASE("distill: stage 0 + 1 lower each layer's operator and output error, bottom to top") {
  auto tokens = testing::toy_corpus(20000);
  std::span<const std::int32_t> span(tokens);
  backend::host_context ctx;
  auto teacher = trained_teacher(span, ctx);
  rng r(2);
  auto random_student = models::make_student<student_t>(teacher, r, small_hyena);
  auto student = models::make_student<student_t>(teacher, r, small_hyena);
  auto o = options();
  o.stage1_steps_per_layer = 40;
  o.fit_batches = 2;
  // The random student's fit, for comparison.
  auto ro = o;
  ro.init = train::student_init::random;
  auto random_fit = train::distiller<teacher_t, student_t>(teacher, random_student, ro).fit_report(ctx, span, "random");
  train::distiller<teacher_t, student_t> d(teacher, student, o);
  auto res = d.run(ctx, span);
  REQUIRE(res.stage1.size() == 4);  // 2 layers x (operator, output)
  REQUIRE(res.fit_initial.size() == 2);
  REQUIRE(res.fit.size() == 2);
  CHECK(res.stage1_tokens == 2 * 40 * 4 * 32);
  for (index_t l = 0; l < 2; ++l) {
    INFO("layer ", l, ": random ", random_fit[l].operator_error, " / ", random_fit[l].output_error, ", stage 0 ",
         res.fit_initial[l].operator_error, " / ", res.fit_initial[l].output_error, ", stage 1 ",
         res.fit[l].operator_error, " / ", res.fit[l].output_error);
    // The attention start is already better than a random mixer, and stage 1 improves on it.
    CHECK(res.fit_initial[l].output_error < random_fit[l].output_error);
    CHECK(res.fit_initial[l].operator_error < random_fit[l].operator_error);
    CHECK(res.fit[l].output_error < res.fit_initial[l].output_error);
  }
  for (auto& t : res.stage1) CHECK(t.last_loss < t.first_loss);
  // Operator alignment alone lowers the operator error (output alignment then trades some of
  // it for the output).
  auto op_student = models::make_student<student_t>(teacher, r, small_hyena);
  o.stage1_operator_fraction = 1;
  auto op_res = train::distiller<teacher_t, student_t>(teacher, op_student, o).run(ctx, span);
  for (index_t l = 0; l < 2; ++l) CHECK(op_res.fit[l].operator_error < op_res.fit_initial[l].operator_error);
}

TEST_CASE("distill: stage 1 runs no layer above l, in the teacher or the student") {
  // Every parameter above layer 0 (blocks, final norm, unembedding) is NaN in both models:
  // a forward or backward that touched one would make the loss or a gradient NaN, which the
  // trainer refuses.
  auto tokens = testing::toy_corpus(8000);
  std::span<const std::int32_t> span(tokens);
  backend::host_context ctx(1);
  teacher_t teacher(tiny());
  rng r(5);
  teacher.init(r);
  auto student = models::make_student<student_t>(teacher, r, small_hyena);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto poison = [&](auto& m) {
    m.for_each_parameter([&](const std::string& name, auto& p, auto&) {
      if (name.rfind("blocks.0.", 0) == 0 || name.rfind("embed.", 0) == 0) return;
      std::fill(p.data, p.data + p.numel(), nan);
    });
  };
  for (auto target : {train::transfer_target::mixer_output, train::transfer_target::block_output}) {
    auto o = options();
    o.stage1_steps_per_layer = 4;
    o.stage1_target = target;
    o.init = train::student_init::random;  // stage 0 reads every layer's attention
    train::distiller<teacher_t, student_t> d(teacher, student, o);
    poison(teacher);
    poison(student);
    auto before = flat_params(student);
    auto done = d.transfer_layer(ctx, 0, span);
    REQUIRE(done.size() == 2);
    for (auto& t : done) CHECK(std::isfinite(t.last_loss));
    // Only layer 0's mixer moved.
    index_t i = 0, moved = 0;
    auto after = flat_params(student);
    student.for_each_parameter([&](const std::string& name, auto& p, auto&) {
      const index_t off = p.data - student.parameter_arena().flat().data;
      const bool mine = name.rfind("blocks.0.mixer.", 0) == 0;
      for (index_t j = 0; j < p.numel(); ++j) {
        const float a = before[std::size_t(off + j)], b = after[std::size_t(off + j)];
        if (mine) moved += a != b;
        else CHECK_MESSAGE((a == b || (std::isnan(a) && std::isnan(b))), name);
      }
      ++i;
    });
    CHECK(moved > 0);
  }
}

TEST_CASE("distill: resume in the middle of stage 1 continues bit for bit") {
  auto tokens = testing::toy_corpus(12000);
  std::span<const std::int32_t> span(tokens);
  backend::host_context ctx(1);
  auto teacher = trained_teacher(span, ctx);
  auto o = options();
  o.stage1_steps_per_layer = 6;
  o.train.steps = 5;
  o.train.checkpoint_every = 1;
  auto run = [&](const std::string& dir, index_t stop_after) {
    rng r(8);
    auto s = models::make_student<student_t>(teacher, r, small_hyena);
    auto oo = o;
    oo.train.run_dir = dir;
    oo.train.stop_after = stop_after;
    train::distiller<teacher_t, student_t>(teacher, s, oo).run(ctx, span);
    return s;
  };
  auto whole = run(temp_dir("whole"), 0);
  const std::string dir = temp_dir("resumed");
  run(dir, 8);  // stops in layer 1's operator part (3 + 3 steps per layer)
  CHECK(train::checkpoint_label(dir) == "stage 1 layer 1 operator");
  auto resumed = run(dir, 0);
  CHECK(flat_params(resumed) == flat_params(whole));
  CHECK(train::checkpoint_label(dir) == "stage 2");
  // metrics.jsonl describes one history: each stage's steps once.
  std::ifstream in(dir + "/metrics.jsonl");
  std::map<std::string, index_t> lines;
  for (std::string line; std::getline(in, line);) lines[nlohmann::json::parse(line).value("label", "")]++;
  CHECK(lines["stage 1 layer 1 operator"] == 3);
  CHECK(lines["stage 2"] == 5);
  CHECK(lines["stage 1 fit"] == 6);  // after stages 0, 1 and 2, 2 layers each
}

TEST_CASE("distill: the block-output variant and stage 2 lower their losses; shared weights can be frozen") {
  auto tokens = testing::toy_corpus(20000);
  std::span<const std::int32_t> span(tokens);
  backend::host_context ctx;
  auto teacher = trained_teacher(span, ctx);
  rng r(3);
  auto student = models::make_student<student_t>(teacher, r, small_hyena);
  std::vector<float> mlp_before(student.parameters().blocks[0].ffn.fc_in.weight.data,
                                student.parameters().blocks[0].ffn.fc_in.weight.data + 10);
  for (auto kd : {"forward", "reverse", "topk:8"}) {
    auto o = options();
    o.stage1_steps_per_layer = 25;
    o.stage1_operator_fraction = 0;
    o.stage1_target = train::transfer_target::block_output;
    o.train.steps = 30;
    o.alpha = 0.8;
    o.beta = 0.1;
    o.freeze_shared = true;
    train::parse_kd(kd, o);
    train::distiller<teacher_t, student_t> d(teacher, student, o);
    auto res = d.run(ctx, span, span.subspan(0, 1000));
    INFO(kd);
    for (auto& l : res.stage1) CHECK(l.last_loss < l.first_loss);
    REQUIRE(res.stage2.history.size() == 30);
    CHECK(res.stage2.history.back().loss < res.stage2.history.front().loss);
  }
  // freeze_shared: the MLPs kept the teacher's weights through stage 2
  CHECK(std::equal(mlp_before.begin(), mlp_before.end(), student.parameters().blocks[0].ffn.fc_in.weight.data));
}

TEST_CASE("distill: budgets, divergence names and bad options") {
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
  // The budget: a quarter to stage 1 over 2 layers, the rest to stage 2, in whole steps.
  o = options();
  train::set_token_budget(o, 100 * 128, 2, 0.25);
  CHECK(o.stage1_steps_per_layer == 12);
  CHECK(o.train.steps == 76);
  train::parse_kd("topk:16", o);
  CHECK(o.kd == train::kd_divergence::topk);
  CHECK(o.kd_topk == 16);
  CHECK_THROWS_WITH_AS(train::parse_kd("topk:0", o), doctest::Contains("topk:K"), hyena::error);
  CHECK_THROWS_WITH_AS(train::parse_kd("sideways", o), doctest::Contains("unknown divergence"), hyena::error);
  // Operator alignment needs an order-2, rank-1 student.
  o = options();
  o.stage1_steps_per_layer = 4;
  models::hyena_student<teacher_t> order3({tiny(), {.order = 3, .filter_order = 16}});
  CHECK_THROWS_WITH_AS((train::distiller<teacher_t, student_t>(teacher, order3, o)),
                       doctest::Contains("order-2, rank-1"), hyena::error);
  models::hyena_student<teacher_t> rank2({tiny(), {.filter_order = 16, .rank = 2}});
  CHECK_THROWS_WITH_AS((train::distiller<teacher_t, student_t>(teacher, rank2, o)), doctest::Contains("rank 2"),
                       hyena::error);
  o.stage1_operator_fraction = 0;  // output alignment alone is fine at any rank
  CHECK_NOTHROW((train::distiller<teacher_t, student_t>(teacher, rank2, o)));
}
