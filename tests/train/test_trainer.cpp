#include <hyena/models/gpt_neox.hpp>
#include <hyena/train/trainer.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/corpus.hpp"
#include "../support/model_check.hpp"

using namespace hyena;
namespace fs = std::filesystem;

namespace {
using model = models::gpt_neox<backend::cpu>;

models::model_config tiny() { return models::gpt_neox_config(256, 32, 2, 4, 64, 32); }

train::trainer_options options(const std::string& dir, index_t steps) {
  train::trainer_options o;
  o.batch = 4;
  o.seq = 32;
  o.steps = steps;
  o.warmup = 2;
  o.lr = 3e-3;
  o.min_lr = 3e-4;
  o.seed = 5;
  o.run_dir = dir;
  o.progress = false;
  o.eval.batch = 4;
  o.eval.seq = 32;
  return o;
}

struct scratch_dir {
  fs::path path;
  explicit scratch_dir(const std::string& name) : path(fs::temp_directory_path() / ("hyena_test_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch_dir() { fs::remove_all(path); }
  std::string str() const { return path.string(); }
};
}  // namespace

TEST_CASE("trainer: a tiny GPT-NeoX learns a toy corpus") {
  auto tokens = testing::toy_corpus(20000);
  model m(tiny());
  rng r(1);
  m.init(r);
  backend::host_context ctx;
  train::trainer<model> t(m, options("", 60));
  auto res = t.run(ctx, std::span<const std::int32_t>(tokens), std::span<const std::int32_t>(tokens).subspan(0, 2000));
  REQUIRE(res.history.size() == 60);
  double first = res.history.front().loss, last = res.history.back().loss;
  INFO("first loss ", first, " last loss ", last);
  CHECK(first > 5.0);        // ~ln(256) at initialisation
  CHECK(last < first - 2.5); // byte statistics and words learned
  CHECK(res.final_eval.tokens == 1999);
  CHECK(res.final_eval.loss < first - 2.5);
}

TEST_CASE("trainer: with bf16 products (matmul_precision::medium) the tiny GPT-NeoX learns as in fp32") {
  auto tokens = testing::toy_corpus(20000);
  std::span<const std::int32_t> span(tokens);
  auto run = [&](backend::matmul_precision p) {
    model m(tiny());
    rng r(1);
    m.init(r);
    backend::host_context ctx;
    ctx.set_float32_matmul_precision(p);
    return train::trainer<model>(m, options("", 60)).run(ctx, span, span.subspan(0, 2000));
  };
  const auto fp32 = run(backend::matmul_precision::highest), mixed = run(backend::matmul_precision::medium);
  const double first = mixed.history.front().loss, last = mixed.history.back().loss;
  INFO("medium: first ", first, " last ", last, " eval ", mixed.final_eval.loss, "; highest: last ",
       fp32.history.back().loss, " eval ", fp32.final_eval.loss);
  CHECK(last < first - 2.5);
  CHECK(std::abs(mixed.final_eval.loss - fp32.final_eval.loss) < 0.01 * fp32.final_eval.loss);
#if HYENA_HAS_BF16_PRODUCT
  CHECK(mixed.history.back().loss != fp32.history.back().loss);  // the products were rounded
#else
  CHECK(mixed.history.back().loss == fp32.history.back().loss);  // a permission only: fp32 throughout
#endif
}

TEST_CASE("trainer: resume continues the run exactly") {
  auto tokens = testing::toy_corpus(8000);
  std::span<const std::int32_t> span(tokens);
  backend::host_context ctx;
  scratch_dir a("resume_a"), b("resume_b");

  model full(tiny());
  rng r1(3);
  full.init(r1);
  auto o = options(a.str(), 6);
  o.checkpoint_every = 3;
  auto whole = train::trainer<model>(full, o).run(ctx, span);

  model first_half(tiny());
  rng r2(3);
  first_half.init(r2);
  auto ob = options(b.str(), 6);
  ob.checkpoint_every = 3;
  ob.stop_after = 3;  // as if the process died after step 3's checkpoint
  auto part1 = train::trainer<model>(first_half, ob).run(ctx, span);
  REQUIRE(part1.history.size() == 3);

  {  // a run that died after its checkpoint: a line past it, then a line cut off mid-write
    std::ofstream m(b.path / "metrics.jsonl", std::ios::app);
    m << "{\"label\":\"train\",\"step\":4,\"loss\":1}\n{\"label\":\"train\",\"st";
  }
  model resumed(tiny());  // fresh weights: everything must come from the checkpoint
  rng r3(99);
  resumed.init(r3);
  ob.stop_after = 0;
  auto part2 = train::trainer<model>(resumed, ob).run(ctx, span);
  REQUIRE(part2.history.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(part1.history[i].loss == whole.history[i].loss);
    CHECK(part2.history[i].step == whole.history[i + 3].step);
    CHECK(part2.history[i].loss == whole.history[i + 3].loss);  // bit for bit
  }
  auto pa = full.parameter_arena().flat(), pb = resumed.parameter_arena().flat();
  CHECK(std::equal(pa.data, pa.data + pa.numel(), pb.data));
  // metrics.jsonl describes one run of 6 steps: the dead run's extra and torn lines are gone
  std::ifstream metrics(b.path / "metrics.jsonl");
  int lines = 0;
  for (std::string l; std::getline(metrics, l);) {
    auto j = nlohmann::json::parse(l, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    CHECK(j["step"] == ++lines);
    if (lines == 4) CHECK(j["loss"] == whole.history[3].loss);
  }
  CHECK(lines == 6);
}

TEST_CASE("trainer: a truncated checkpoint is a clear error, not a crash") {
  auto tokens = testing::toy_corpus(4000);
  std::span<const std::int32_t> span(tokens);
  backend::host_context ctx;
  scratch_dir d("truncated");
  model m(tiny());
  rng r(1);
  m.init(r);
  train::trainer<model>(m, options(d.str(), 2)).run(ctx, span);
  const auto ckpt = d.path / "checkpoint.safetensors";
  REQUIRE(fs::exists(ckpt));
  fs::resize_file(ckpt, fs::file_size(ckpt) / 2);
  model again(tiny());
  again.init(r);
  auto o = options(d.str(), 4);
  CHECK_THROWS_AS(train::trainer<model>(again, o).run(ctx, span), hyena::error);
  // A checkpoint of another shape names the offending tensor.
  fs::remove(ckpt);
  train::trainer<model>(m, options(d.str(), 2)).run(ctx, span);
  auto other = tiny();
  other.intermediate = 96;
  model wrong(other);
  try {
    train::load_checkpoint(ckpt.string(), wrong);
    FAIL("expected an error");
  } catch (const hyena::error& e) {
    CHECK(std::string(e.what()).find("fc_in") != std::string::npos);
  }
}

TEST_CASE("trainer: a NaN loss stops training with hyena::error") {
  auto tokens = testing::toy_corpus(4000);
  model m(tiny());
  rng r(1);
  m.init(r);
  m.parameters().final_norm.weight.data[0] = std::numeric_limits<float>::quiet_NaN();
  backend::host_context ctx;
  auto o = options("", 3);
  CHECK_THROWS_WITH_AS(train::trainer<model>(m, o).run(ctx, std::span<const std::int32_t>(tokens)),
                       doctest::Contains("not finite"), hyena::error);
}

TEST_CASE("evaluate: perplexity is exp of the mean token loss over the whole file") {
  auto tokens = testing::toy_corpus(1000);
  model m(tiny());
  rng r(2);
  m.init(r);
  backend::host_context ctx;
  train::eval_options o{.batch = 2, .seq = 32, .max_tokens = 0, .source_bytes = 999};
  auto res = train::evaluate(m, ctx, std::span<const std::int32_t>(tokens), o);
  CHECK(res.tokens == 999);
  CHECK(res.perplexity == doctest::Approx(std::exp(res.loss)));
  CHECK(res.bits_per_byte == doctest::Approx(res.loss / std::log(2.0)));  // one byte per token
  // The same number by hand: score each window separately.
  double nll = 0;
  index_t n = 0;
  m.reserve(1, 32, models::mode::infer);
  for (index_t start = 0; start + 1 < index_t(tokens.size()); start += 32) {
    index_t len = std::min<index_t>(32, index_t(tokens.size()) - 1 - start);
    tensor<std::int32_t> in({1, len}), tg({1, len});
    std::copy(tokens.begin() + start, tokens.begin() + start + len, in.data());
    std::copy(tokens.begin() + start + 1, tokens.begin() + start + len + 1, tg.data());
    auto logits = m.forward(ctx, in.v());
    nll += nn::cross_entropy_loss<backend::cpu>(ctx, logits, tg.v()) * double(len);
    n += len;
  }
  CHECK(n == 999);
  CHECK(res.loss == doctest::Approx(nll / double(n)).epsilon(1e-6));
}

TEST_CASE("trainer: a checkpoint whose train.step is not a count is refused by name") {
  scratch_dir dir("bad_step");
  backend::host_context ctx;
  auto tokens = testing::toy_corpus(4000);
  for (const char* bad : {"x7", "12abc", "-3", "", "99999999999999999999999"}) {
    model m(tiny());
    rng r(1);
    m.init(r);
    train::adamw<float> opt(train::param_entries<float>(m.parameters(), m.gradients(), m.config()));
    train::save_checkpoint(dir.str() + "/checkpoint.safetensors", m, &opt,
                           {{"train.step", bad}, {"train.seed", "5"}, {"train.label", "train"}});
    train::trainer<model> t(m, options(dir.str(), 4));
    INFO("train.step = '", bad, "'");
    CHECK_THROWS_WITH_AS(t.run(ctx, std::span<const std::int32_t>(tokens)),
                         doctest::Contains((std::string("train.step '") + bad + "' is not a step count").c_str()), hyena::error);
  }
}
