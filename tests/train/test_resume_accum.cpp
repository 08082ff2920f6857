// Resume with gradient accumulation: a run of grad_accum = 2 stopped after its step-3 checkpoint
// and resumed must reproduce the uninterrupted run bit for bit. The data loader has to restart at
// micro-batch step * grad_accum, not at step (issue 12's mutation spot-check: that one-line bug
// survived the whole suite, whose resume test uses grad_accum = 1).
#include <doctest/doctest.h>

#include <filesystem>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/train/trainer.hpp>

#include "../support/corpus.hpp"

using namespace hyena;
namespace fs = std::filesystem;

namespace {
using model = models::gpt_neox<backend::cpu>;

train::trainer_options options(const std::string& dir) {
  train::trainer_options o;
  o.batch = 2;
  o.seq = 16;
  o.steps = 6;
  o.grad_accum = 2;
  o.warmup = 1;
  o.lr = 3e-3;
  o.min_lr = 3e-4;
  o.seed = 11;
  o.run_dir = dir;
  o.progress = false;
  o.checkpoint_every = 3;
  o.eval.batch = 2;
  o.eval.seq = 16;
  return o;
}

struct scratch {
  fs::path path;
  explicit scratch(const std::string& name) : path(fs::temp_directory_path() / ("hyena_test_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch() { fs::remove_all(path); }
};
}  // namespace

TEST_CASE("trainer: resume with grad_accum = 2 continues the run exactly") {
  const auto cfg = models::gpt_neox_config(256, 16, 1, 2, 32, 16);
  auto tokens = testing::toy_corpus(6000);
  std::span<const std::int32_t> span(tokens);
  backend::host_context ctx;
  scratch a("resume_accum_a"), b("resume_accum_b");

  model full(cfg);
  rng r1(3);
  full.init(r1);
  auto whole = train::trainer<model>(full, options(a.path.string())).run(ctx, span);
  REQUIRE(whole.history.size() == 6);

  model first(cfg);
  rng r2(3);
  first.init(r2);
  auto ob = options(b.path.string());
  ob.stop_after = 3;
  auto part1 = train::trainer<model>(first, ob).run(ctx, span);
  REQUIRE(part1.history.size() == 3);

  model resumed(cfg);
  rng r3(77);
  resumed.init(r3);
  ob.stop_after = 0;
  auto part2 = train::trainer<model>(resumed, ob).run(ctx, span);
  REQUIRE(part2.history.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(part1.history[i].loss == whole.history[i].loss);
    CHECK(part2.history[i].step == whole.history[i + 3].step);
    CHECK(part2.history[i].loss == whole.history[i + 3].loss);  // bit for bit: same batches
  }
  auto pa = full.parameter_arena().flat(), pb = resumed.parameter_arena().flat();
  CHECK(std::equal(pa.data, pa.data + pa.numel(), pb.data));
}
