// The code paths a device backend takes (batches uploaded, checkpoints staged through the host,
// initialisation drawn on the host and uploaded, logits read back for sampling), run on the CPU:
// `offhost` (support/offhost.hpp) is cpu_ref's ops over a memory type that is not host_memory (its
// transfers are copies), so the library treats its tensors as device tensors. With the same ops and
// the same data, every result must equal cpu_ref's bit for bit; a wrong size or a missed upload in
// those branches shows.
// (Incremental decoding's positions and token ids take the same upload path: nn/decode_positions.hpp.)
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <span>
#include <vector>

#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu_ref/cpu_ref.hpp>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/student.hpp>
#include <hyena/train/distill.hpp>
#include <hyena/train/generate.hpp>
#include <hyena/train/trainer.hpp>

#include "../support/offhost.hpp"
#include "../support/tiny_runs.hpp"

using namespace hyena;

namespace {

using testing::offhost;
using testing::offhost_memory;

template <class B>
using teacher_on = models::gpt_neox<B, double>;
template <class B>
using student_on = models::hyena_student<teacher_on<B>>;

using testing::tiny_config;
train::trainer_options options(const std::string& run_dir = {}) { return testing::tiny_train_options(run_dir); }

template <class M>
std::vector<double> params_of(M& m) {
  return to_host_vector(m.parameter_arena().flat());
}

void check_same(const train::train_result& a, const train::train_result& b) {
  REQUIRE(a.history.size() == b.history.size());
  for (std::size_t i = 0; i < a.history.size(); ++i) {
    CAPTURE(i);
    CHECK(a.history[i].loss == b.history[i].loss);
    CHECK(a.history[i].grad_norm == b.history[i].grad_norm);
  }
  CHECK(a.final_eval.loss == b.final_eval.loss);
}

std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("hyena_test_staging_" + name);
  std::filesystem::remove_all(p);
  return p.string();
}

}  // namespace

TEST_CASE("off-host memory: training, evaluation and the parameters equal cpu_ref's exactly") {
  const auto corpus = testing::toy_corpus(20000);
  const std::span<const std::int32_t> tokens(corpus);
  backend::host_context ctx(1);
  teacher_on<backend::cpu_ref> a(tiny_config());
  teacher_on<offhost> b(tiny_config());
  rng ra(1), rb(1);
  a.init(ra);
  const long before = offhost_memory::transfers;
  b.init(rb);
  CHECK(offhost_memory::transfers > before);  // the initial values were uploaded
  CHECK(params_of(a) == params_of(b));
  const auto ra_ = train::trainer<teacher_on<backend::cpu_ref>>(a, options()).run(ctx, tokens, tokens.subspan(0, 3000));
  const auto rb_ = train::trainer<teacher_on<offhost>>(b, options()).run(ctx, tokens, tokens.subspan(0, 3000));
  check_same(ra_, rb_);
  CHECK(params_of(a) == params_of(b));
}

TEST_CASE("off-host memory: a checkpoint written there resumes on the host exactly, and back") {
  const auto corpus = testing::toy_corpus(20000);
  const std::span<const std::int32_t> tokens(corpus);
  backend::host_context ctx(1);
  const auto whole_dir = temp_dir("whole"), split_dir = temp_dir("split");
  teacher_on<backend::cpu_ref> whole(tiny_config());
  rng r0(2);
  whole.init(r0);
  const auto full = train::trainer<teacher_on<backend::cpu_ref>>(whole, options(whole_dir)).run(ctx, tokens);

  teacher_on<offhost> first(tiny_config());
  rng r1(2);
  first.init(r1);
  auto o = options(split_dir);
  o.checkpoint_every = 3;
  o.stop_after = 3;
  train::trainer<teacher_on<offhost>>(first, o).run(ctx, tokens);  // steps 1-3 off the host
  teacher_on<backend::cpu_ref> second(tiny_config());
  o.stop_after = 0;
  const auto rest = train::trainer<teacher_on<backend::cpu_ref>>(second, o).run(ctx, tokens);  // 4-6 on it
  REQUIRE(rest.history.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(rest.history[i].loss == full.history[i + 3].loss);
  CHECK(params_of(second) == params_of(whole));

  // And the host checkpoint loads into an off-host model with the same values.
  teacher_on<offhost> back(tiny_config());
  train::load_checkpoint(split_dir + "/checkpoint.safetensors", back);
  CHECK(params_of(back) == params_of(whole));
  std::filesystem::remove_all(whole_dir);
  std::filesystem::remove_all(split_dir);
}

TEST_CASE("off-host memory: distillation (stage 0 from attention, stage 1, stage 2) equals cpu_ref's") {
  const auto corpus = testing::toy_corpus(20000);
  const std::span<const std::int32_t> tokens(corpus);
  backend::host_context ctx(1);
  teacher_on<backend::cpu_ref> ta(tiny_config());
  teacher_on<offhost> tb(tiny_config());
  rng ra(3), rb(3);
  ta.init(ra);
  tb.init(rb);
  train::trainer<teacher_on<backend::cpu_ref>>(ta, options()).run(ctx, tokens);
  train::trainer<teacher_on<offhost>>(tb, options()).run(ctx, tokens);
  const auto distill_options = testing::tiny_distill_options;
  rng sa(5), sb(5);
  auto a = models::make_student<student_on<backend::cpu_ref>>(ta, sa, {.filter_order = 16});
  auto b = models::make_student<student_on<offhost>>(tb, sb, {.filter_order = 16});
  CHECK(params_of(a) == params_of(b));
  const auto da = train::distiller<teacher_on<backend::cpu_ref>, student_on<backend::cpu_ref>>(ta, a, distill_options())
                      .run(ctx, tokens, tokens.subspan(0, 3000));
  const auto db = train::distiller<teacher_on<offhost>, student_on<offhost>>(tb, b, distill_options())
                      .run(ctx, tokens, tokens.subspan(0, 3000));
  CHECK(da.filter_fit == db.filter_fit);
  REQUIRE(da.stage1.size() == db.stage1.size());
  check_same(da.stage2, db.stage2);
  CHECK(params_of(a) == params_of(b));
}

TEST_CASE("off-host memory: generation (recompute, and incremental for attention and Hyena) equals cpu_ref's") {
  backend::host_context ctx(1);
  teacher_on<backend::cpu_ref> a(tiny_config());
  teacher_on<offhost> b(tiny_config());
  rng ra(4), rb(4);
  a.init(ra);
  b.init(rb);
  rng sa(6), sb(6);
  auto sa_ = models::make_student<student_on<backend::cpu_ref>>(a, sa, {.filter_order = 16});
  auto sb_ = models::make_student<student_on<offhost>>(b, sb, {.filter_order = 16});
  train::sampling s{.temperature = 0.8, .seed = 9};
  const std::vector<std::int32_t> prompt{1, 2, 3};
  for (auto mode : {train::decode_mode::recompute, train::decode_mode::exact}) {
    CAPTURE(int(mode));
    train::generate_options<double> o;
    o.decode = mode;
    const auto want = train::generate(a, ctx, prompt, 12, s, o);
    CHECK(train::generate(b, ctx, prompt, 12, s, o) == want);
    CHECK(train::generate(sb_, ctx, prompt, 12, s, o) == train::generate(sa_, ctx, prompt, 12, s, o));
  }
}
