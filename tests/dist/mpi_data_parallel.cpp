// Data-parallel training and distillation over MPI, run as `mpirun -np 2 mpi_data_parallel`.
//
// Every rank also runs the single-process reference itself (batch 2B, no communicator), so
// each comparison is local: 2 ranks x batch B must give the losses and parameters of 1 rank x
// batch 2B. The models are in double, so "equal" is to 1e-9: only the order of the additions
// differs (the reference sums the 2B rows' gradients in one backward, the ranks sum B each and
// then add the two halves).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <hyena/dist/mpi.hpp>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/student.hpp>
#include <hyena/train/distill.hpp>
#include <hyena/train/trainer.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "../support/corpus.hpp"

using namespace hyena;
namespace fs = std::filesystem;

namespace {
std::unique_ptr<dist::mpi_communicator> world;

using teacher_t = models::gpt_neox<backend::cpu, double>;
using student_t = models::hyena_student<teacher_t>;
constexpr index_t B = 2, seq = 32, steps = 20;

models::model_config tiny() { return models::gpt_neox_config(256, 32, 2, 4, 64, 32); }

const std::vector<std::int32_t>& corpus() {
  static const auto c = testing::toy_corpus(20000);
  return c;
}
io::token_span train_span() { return std::span<const std::int32_t>(corpus()).subspan(0, 16000); }
io::token_span valid_span() { return std::span<const std::int32_t>(corpus()).subspan(16000); }

train::trainer_options options(dist::communicator* comm, index_t batch) {
  train::trainer_options o;
  o.batch = batch;
  o.seq = seq;
  o.steps = steps;
  o.warmup = 3;
  o.lr = 3e-3;
  o.min_lr = 3e-4;
  o.seed = 11;
  o.progress = false;
  o.eval = {.batch = 3, .seq = seq, .max_tokens = 2500};
  o.eval_every = 10;
  o.comm = comm;
  return o;
}

template <class M>
M fresh(const models::model_config& c, std::uint64_t seed) {
  M m(c);
  rng r(seed);
  m.init(r);
  return m;
}

template <class M>
double max_param_diff(M& a, M& b) {
  auto x = a.parameter_arena().flat(), y = b.parameter_arena().flat();
  REQUIRE(x.numel() == y.numel());
  double d = 0;
  for (index_t i = 0; i < x.numel(); ++i) d = std::max(d, std::abs(x.data[i] - y.data[i]));
  return d;
}

void check_same_history(const train::train_result& a, const train::train_result& b) {
  REQUIRE(a.history.size() == b.history.size());
  for (std::size_t i = 0; i < a.history.size(); ++i) {
    INFO("step ", a.history[i].step);
    CHECK(a.history[i].loss == doctest::Approx(b.history[i].loss).epsilon(1e-9));
    CHECK(a.history[i].grad_norm == doctest::Approx(b.history[i].grad_norm).epsilon(1e-8));
    CHECK(a.history[i].tokens == b.history[i].tokens);
    if (!std::isnan(b.history[i].val_loss)) CHECK(a.history[i].val_loss == doctest::Approx(b.history[i].val_loss).epsilon(1e-9));
  }
}

// A resumed run (steps 11-20) against the uninterrupted one: the same losses and final parameters.
void check_continues(const train::train_result& rest, teacher_t& m, const train::train_result& whole_res,
                     teacher_t& whole) {
  REQUIRE(rest.history.size() == 10);
  for (std::size_t i = 0; i < 10; ++i)
    CHECK(rest.history[i].loss == doctest::Approx(whole_res.history[10 + i].loss).epsilon(1e-9));
  CHECK(max_param_diff(m, whole) < 1e-9);
}

// A folder every rank agrees on (rank 0 makes it clean).
std::string shared_dir(const std::string& name) {
  const auto p = fs::temp_directory_path() / ("hyena_test_mpi_" + name);
  if (world->is_root()) {
    fs::remove_all(p);
    fs::create_directories(p);
  }
  world->barrier();
  return p.string();
}

teacher_t trained_teacher(backend::host_context& ctx) {
  auto t = fresh<teacher_t>(tiny(), 1);
  auto o = options(nullptr, 4);
  o.steps = 30;
  train::trainer<teacher_t>(t, o).run(ctx, train_span());
  return t;
}
}  // namespace

TEST_CASE("mpi: the communicator's collectives") {
  REQUIRE(world->size() == 2);
  double x[3] = {1.0 + world->rank(), 10.0, -0.5 * world->rank()};
  world->all_reduce_sum(x, 3);
  CHECK(x[0] == 3.0);
  CHECK(x[1] == 20.0);
  CHECK(x[2] == -0.5);
  float g[5] = {-1, -1, -1, -1, -1};  // pieces of 3 and 2
  for (int i = 0; i < 5; ++i)
    if ((world->rank() == 0 && i < 3) || (world->rank() == 1 && i >= 3)) g[i] = float(i * i);
  world->all_gather(g, {3, 2});
  for (int i = 0; i < 5; ++i) CHECK(g[i] == float(i * i));
  CHECK(dist::broadcast_string(*world, world->is_root() ? "from rank 0" : "ignored") == "from rank 0");
}

TEST_CASE("mpi: 2 ranks x batch B train as 1 rank x batch 2B (20 steps, validation split and reduced)") {
  backend::host_context ctx;
  auto ref = fresh<teacher_t>(tiny(), 3);
  auto ref_res = train::trainer<teacher_t>(ref, options(nullptr, 2 * B)).run(ctx, train_span(), valid_span());
  // Each rank starts from a different draw: the run must begin from rank 0's parameters.
  auto dp = fresh<teacher_t>(tiny(), world->is_root() ? 3 : 99);
  auto dp_res = train::trainer<teacher_t>(dp, options(world.get(), B)).run(ctx, train_span(), valid_span());
  check_same_history(dp_res, ref_res);
  CHECK(max_param_diff(dp, ref) < 1e-9);
  CHECK(dp_res.final_eval.tokens == ref_res.final_eval.tokens);
  CHECK(dp_res.final_eval.loss == doctest::Approx(ref_res.final_eval.loss).epsilon(1e-10));
}

TEST_CASE("mpi: with gradient accumulation too") {
  backend::host_context ctx;
  auto o1 = options(nullptr, 2 * B), o2 = options(world.get(), B);
  o1.grad_accum = o2.grad_accum = 2;
  o1.steps = o2.steps = 8;
  auto ref = fresh<teacher_t>(tiny(), 3), dp = fresh<teacher_t>(tiny(), 3);
  auto a = train::trainer<teacher_t>(ref, o1).run(ctx, train_span());
  auto b = train::trainer<teacher_t>(dp, o2).run(ctx, train_span());
  check_same_history(b, a);
  CHECK(max_param_diff(dp, ref) < 1e-9);
}

TEST_CASE("mpi: resuming a 2-rank run with 2 ranks and with 1 continues its loss curve") {
  backend::host_context ctx;
  auto whole = fresh<teacher_t>(tiny(), 3);
  auto whole_res = train::trainer<teacher_t>(whole, options(world.get(), B)).run(ctx, train_span());

  const std::string dir2 = shared_dir("resume2"), dir1 = shared_dir("resume1");
  for (const auto& dir : {dir2, dir1}) {  // the first 10 steps on 2 ranks, checkpointed
    auto o = options(world.get(), B);
    o.run_dir = dir;
    o.checkpoint_every = 5;
    o.stop_after = 10;
    auto m = fresh<teacher_t>(tiny(), 3);
    auto first = train::trainer<teacher_t>(m, o).run(ctx, train_span());
    CHECK(first.steps_done == 10);
  }
  world->barrier();
  CHECK(fs::exists(dir2 + "/checkpoint.safetensors"));

  // Steps 11-20 on 2 ranks, from the checkpoint (rank 1 starts from other parameters).
  auto o = options(world.get(), B);
  o.run_dir = dir2;
  auto m2 = fresh<teacher_t>(tiny(), 50 + world->rank());
  auto rest2 = train::trainer<teacher_t>(m2, o).run(ctx, train_span());
  check_continues(rest2, m2, whole_res, whole);

  // Steps 11-20 on 1 rank with batch 2B (rank 0 alone; the global batch is the same).
  if (world->is_root()) {
    auto o1 = options(nullptr, 2 * B);
    o1.run_dir = dir1;
    auto m1 = fresh<teacher_t>(tiny(), 77);
    auto rest1 = train::trainer<teacher_t>(m1, o1).run(ctx, train_span());
    check_continues(rest1, m1, whole_res, whole);
  }
  world->barrier();

  // Rank 0 alone wrote: one metrics file whose steps run 1..20 once each.
  if (world->is_root()) {
    std::ifstream in(dir2 + "/metrics.jsonl");
    std::vector<index_t> seen;
    for (std::string line; std::getline(in, line);) seen.push_back(nlohmann::json::parse(line).at("step"));
    REQUIRE(seen.size() == 20);
    for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == index_t(i + 1));
    fs::remove_all(dir2);
    fs::remove_all(dir1);
  }
}

TEST_CASE("mpi: ZeRO-1 gives plain data parallel's parameters, with half the optimizer state per rank") {
  backend::host_context ctx;
  auto plain = fresh<teacher_t>(tiny(), 3), sharded = fresh<teacher_t>(tiny(), 3);
  train::trainer<teacher_t> a(plain, options(world.get(), B));
  auto o = options(world.get(), B);
  o.zero1 = true;
  train::trainer<teacher_t> b(sharded, o);
  CHECK(b.optimizer().sharded());
  const double share = double(b.optimizer().state_bytes()) / double(a.optimizer().state_bytes());
  INFO("rank ", world->rank(), " keeps ", share, " of the optimizer state");
  CHECK(share > 0.45);
  CHECK(share < 0.55);
  auto ra = a.run(ctx, train_span(), valid_span());
  auto rb = b.run(ctx, train_span(), valid_span());
  check_same_history(rb, ra);
  CHECK(max_param_diff(sharded, plain) == 0.0);  // the same arithmetic, element by element
}

TEST_CASE("mpi: a ZeRO-1 checkpoint holds the whole state: resumed with ZeRO-1 on 2 ranks and plainly on 1") {
  backend::host_context ctx;
  auto whole = fresh<teacher_t>(tiny(), 3);
  auto whole_res = train::trainer<teacher_t>(whole, options(world.get(), B)).run(ctx, train_span());
  const std::string dir2 = shared_dir("zero_resume2"), dir1 = shared_dir("zero_resume1");
  for (const auto& dir : {dir2, dir1}) {
    auto o = options(world.get(), B);
    o.zero1 = true;
    o.run_dir = dir;
    o.checkpoint_every = 10;
    o.stop_after = 10;
    auto m = fresh<teacher_t>(tiny(), 3);
    train::trainer<teacher_t>(m, o).run(ctx, train_span());
  }
  auto o = options(world.get(), B);
  o.zero1 = true;
  o.run_dir = dir2;
  auto m2 = fresh<teacher_t>(tiny(), 60);
  auto rest2 = train::trainer<teacher_t>(m2, o).run(ctx, train_span());
  check_continues(rest2, m2, whole_res, whole);
  if (world->is_root()) {
    auto o1 = options(nullptr, 2 * B);
    o1.run_dir = dir1;
    auto m1 = fresh<teacher_t>(tiny(), 61);
    auto rest1 = train::trainer<teacher_t>(m1, o1).run(ctx, train_span());
    check_continues(rest1, m1, whole_res, whole);
    fs::remove_all(dir2);
    fs::remove_all(dir1);
  }
  world->barrier();
}

TEST_CASE("mpi: distillation (attention init, both stage-1 parts, stage 2) on 2 ranks x B = 1 rank x 2B") {
  backend::host_context ctx;
  auto teacher = trained_teacher(ctx);
  auto distil = [&](dist::communicator* comm, index_t batch, std::uint64_t student_seed) {
    train::distill_options o;
    o.train = options(comm, batch);
    o.train.eval_every = 0;
    o.train.steps = steps;
    o.stage1_steps_per_layer = steps;  // 10 operator + 10 output alignment steps per layer
    o.attention.filter_fit_steps = 50;
    o.attention.batches = 1;
    o.fit_batches = 1;
    rng r(student_seed);
    auto s = std::make_unique<student_t>(models::make_student<student_t>(teacher, r, nn::hyena_hparams{.filter_order = 16}));
    train::distiller<teacher_t, student_t> d(teacher, *s, o);
    auto res = d.run(ctx, train_span(), valid_span());
    return std::make_pair(std::move(s), res);
  };
  auto [ref, ref_res] = distil(nullptr, 2 * B, 5);
  auto [dp, dp_res] = distil(world.get(), B, 5);
  REQUIRE(dp_res.stage1.size() == ref_res.stage1.size());
  CHECK(dp_res.stage1.size() == 4);
  for (std::size_t i = 0; i < ref_res.stage1.size(); ++i) {
    const auto& run = ref_res.stage1[i];  // a plain reference: INFO cannot capture a structured binding
    INFO("stage 1 run ", i, " (layer ", run.layer, ", ", run.part, ")");
    CHECK(dp_res.stage1[i].first_loss == doctest::Approx(ref_res.stage1[i].first_loss).epsilon(1e-9));
    CHECK(dp_res.stage1[i].last_loss == doctest::Approx(ref_res.stage1[i].last_loss).epsilon(1e-8));
  }
  check_same_history(dp_res.stage2, ref_res.stage2);
  CHECK(max_param_diff(*dp, *ref) < 1e-8);
}

int main(int argc, char** argv) {
  world = std::make_unique<dist::mpi_communicator>(&argc, &argv);
  doctest::Context context(argc, argv);
  int failed = 0;
  try {
    failed = context.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", world->rank(), e.what());
    world->abort(1);
  }
  // A rank whose checks failed must fail the job even if the other's passed.
  double any = failed ? 1 : 0;
  world->all_reduce_sum(&any, 1);
  world.reset();
  return any > 0 ? 1 : 0;
}
