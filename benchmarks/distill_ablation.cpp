// distill_ablation: one run of the distillation ablation (benchmarks/distill_ablation.py
// runs the whole table): a Hyena student trained from scratch or distilled from a teacher
// with a given recipe and student-token budget, scored on held-out tokens.
//
//   distill_ablation --teacher T --train TRAIN.tok --held HELD.tok --tokens N --out DIR
//                    [--variant scratch|distill] [recipe flags, as `hyena distill`]
//   distill_ablation --teacher stories260K.bin --sample TRAIN_TOKENS,HELD_TOKENS --corpus CDIR --out DIR ...
//
// T is a llama2.c checkpoint (.bin: a Llama) or our checkpoint of a gpt_neox teacher (the
// demo's teacher/model.safetensors). --sample writes data-free corpora sampled from the
// teacher (temperature 1, documents from BOS; training seed 1, held-out seed 2) to CDIR
// (kept for the other runs; --tokens 0 only samples). DIR/result.json gets: the recipe, held-out loss,
// perplexity and KL(teacher || student), the validation curve against student tokens
// (for a distilled student it starts after stage 0 and after stage 1), the per-layer fit and
// wall times.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <hyena/io/llama2c.hpp>
#include <hyena/io/llama2c_tokenizer.hpp>
#include <hyena/io/token_file.hpp>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/llama.hpp>
#include <hyena/models/student.hpp>
#include <hyena/train/checkpoint.hpp>
#include <hyena/train/distill.hpp>
#include <hyena/train/evaluate.hpp>
#include <hyena/train/sample_corpus.hpp>
#include <hyena/train/trainer.hpp>

using namespace hyena;
namespace fs = std::filesystem;

namespace {

struct args {
  std::string teacher, train, held, out, sample, corpus, variant = "distill", init = "attention", target = "mixer",
                                                 kd = "forward", gates = "ones", branches = "off";
  index_t tokens = 0, batch = 8, seq = 256, eval_points = 20, curve_tokens = 0, filter_order = 64, order = 2,
          rank = 1;
  double stage1_fraction = train::recommended_stage1_fraction, operator_fraction = -1, lr = 2e-3, stage1_lr = -1,
         tau = -1, alpha = -1, beta = 0, scratch_lr = 3e-3, weight_decay = -1, beta2 = -1,
         filter_lr_scale = -1, taylor_scale = 1, min_lr_ratio = 0.1;
  bool freeze_shared = false;
  std::uint64_t seed = 5;
  int threads = 0;
};

double now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// Held-out loss, perplexity and KL(teacher || model) per scored position (temperature 1, double).
template <class Model, class Teacher>
nlohmann::json score(Model& m, Teacher& teacher, backend::host_context& ctx, io::token_span held, index_t batch,
                     index_t seq) {
  auto e = train::evaluate(m, ctx, held, train::eval_options{.batch = batch, .seq = seq});
  const index_t V = teacher.config().vocab;
  teacher.reserve(batch, seq, models::mode::infer);
  m.reserve(batch, seq, models::mode::infer);
  train::sequential_loader loader(held, batch, seq);
  train::token_batch b(batch, seq);
  double kl = 0;
  index_t n = 0;
  std::vector<double> pt(std::size_t(V), 0.0);
  while (loader.next(b).windows > 0) {
    auto tl = teacher.forward(ctx, b.inputs.v());
    auto ml = m.forward(ctx, b.inputs.v());
    for (index_t r = 0; r < batch * seq; ++r) {
      if (b.targets.data()[r] == train::ignore_target) continue;
      const float *a = tl.data + r * V, *c = ml.data + r * V;
      double ma = a[0], mc = c[0], za = 0, zc = 0, cross = 0;
      for (index_t v = 1; v < V; ++v) ma = std::max(ma, double(a[v])), mc = std::max(mc, double(c[v]));
      for (index_t v = 0; v < V; ++v) za += pt[std::size_t(v)] = std::exp(a[v] - ma), zc += std::exp(c[v] - mc);
      const double lza = std::log(za) + ma, lzc = std::log(zc) + mc;
      for (index_t v = 0; v < V; ++v) cross += pt[std::size_t(v)] / za * ((a[v] - lza) - (c[v] - lzc));
      kl += cross;
      ++n;
    }
  }
  return {{"loss", e.loss}, {"ppl", e.perplexity}, {"kl", kl / double(std::max<index_t>(n, 1))}, {"tokens", e.tokens}};
}

nlohmann::json fit_json(const std::vector<train::layer_fit>& fit) {
  nlohmann::json j = nlohmann::json::array();
  for (auto& f : fit) {
    nlohmann::json e{{"layer", f.layer}, {"output_error", f.output_error}};
    if (!std::isnan(f.operator_error)) e["operator_error"] = f.operator_error;
    j.push_back(e);
  }
  return j;
}

template <class Teacher>
void run(const args& a, Teacher& teacher) {
  using Student = models::hyena_student<Teacher>;
  fs::create_directories(a.out);
  backend::host_context ctx(a.threads);
  std::string train_path = a.train, held_path = a.held;
  if (!a.sample.empty()) {  // data-free corpora, sampled once and shared by every run
    const auto comma = a.sample.find(',');
    HYENA_CHECK(comma != std::string::npos, "--sample wants TRAIN_TOKENS,HELD_TOKENS");
    const index_t n_train = std::stoll(a.sample.substr(0, comma)), n_held = std::stoll(a.sample.substr(comma + 1));
    const fs::path dir = a.corpus.empty() ? fs::path(a.out).parent_path() / "corpus" : fs::path(a.corpus);
    fs::create_directories(dir);
    train_path = (dir / ("train_" + std::to_string(n_train) + ".tok")).string();
    held_path = (dir / ("held_" + std::to_string(n_held) + ".tok")).string();
    const std::int32_t bos = io::llama2c_tokenizer::bos, eos = io::llama2c_tokenizer::eos;
    if (!fs::exists(train_path))
      train::sample_corpus_file(train_path, teacher, ctx, n_train, {.temperature = 1.0, .seed = 1}, bos, a.seq,
                                {.eos_id = eos, .parallel_docs = 1});
    if (!fs::exists(held_path))
      train::sample_corpus_file(held_path, teacher, ctx, n_held, {.temperature = 1.0, .seed = 2}, bos, a.seq,
                                {.eos_id = eos, .parallel_docs = 1});
  }
  if (a.tokens == 0) return;  // sampling only
  io::token_file train_file(train_path), held_file(held_path);
  const index_t per_step = a.batch * a.seq;
  const index_t total_steps = std::max<index_t>(1, a.tokens / per_step);
  const index_t eval_every = std::max<index_t>(1, total_steps / a.eval_points);
  // The curve's points score the first curve_tokens held-out tokens (0: all); the final scores all.
  train::eval_options eo{.batch = a.batch, .seq = a.seq, .max_tokens = a.curve_tokens};
  nlohmann::json out{{"variant", a.variant}, {"teacher", a.teacher}, {"train", train_path}, {"held", held_path},
                     {"budget_tokens", a.tokens}, {"batch", a.batch}, {"seq", a.seq}, {"seed", a.seed}};
  nlohmann::json curve = nlohmann::json::array();
  const double t0 = now();
  nn::hyena_hparams h{.order = a.order, .filter_order = a.filter_order, .rank = a.rank};
  rng r(a.seed + 6);
  Student student = models::make_student<Student>(teacher, r, h);
  if (a.variant == "scratch") {
    student.init(r);  // nothing from the teacher
    train::trainer_options o;
    o.label = "scratch";
    o.batch = a.batch, o.seq = a.seq, o.steps = total_steps, o.warmup = std::max<index_t>(1, total_steps / 20);
    o.lr = a.scratch_lr, o.min_lr = a.scratch_lr / 10, o.seed = a.seed, o.eval_every = eval_every, o.eval = eo;
    o.progress = false;
    auto res = train::trainer<Student>(student, o).run(ctx, train_file.tokens(), held_file.tokens());
    for (auto& rec : res.history)
      if (!std::isnan(rec.val_loss)) curve.push_back({rec.tokens, rec.val_loss});
    out["recipe"] = {{"lr", a.scratch_lr}};
  } else {
    HYENA_CHECK(a.variant == "distill", "--variant must be scratch or distill");
    train::distill_options d;
    d.train.batch = a.batch, d.train.seq = a.seq, d.train.seed = a.seed, d.train.progress = false;
    d.train.lr = a.lr, d.train.min_lr = a.lr * a.min_lr_ratio;
    d.train.eval = eo;
    if (a.weight_decay >= 0) d.train.adam.weight_decay = a.weight_decay;
    if (a.beta2 > 0) d.train.adam.beta2 = a.beta2;
    if (a.filter_lr_scale > 0) d.train.adam.filter_lr_scale = a.filter_lr_scale;
    d.freeze_shared = a.freeze_shared;
    d.init = a.init == "random" ? train::student_init::random : train::student_init::attention;
    d.attention.gates = a.gates == "qk" ? train::gate_init::qk : train::gate_init::ones;
    d.attention.branches = train::parse_branch_init(a.branches);
    d.attention.taylor_scale = a.taylor_scale;
    d.stage1_target = a.target == "block" ? train::transfer_target::block_output : train::transfer_target::mixer_output;
    if (a.operator_fraction >= 0) d.stage1_operator_fraction = a.operator_fraction;
    if (a.stage1_lr > 0) d.stage1_lr = a.stage1_lr;
    if (a.tau > 0) d.tau = a.tau;
    if (a.alpha >= 0) d.alpha = a.alpha;
    d.beta = a.beta;
    train::parse_kd(a.kd, d);
    train::set_token_budget(d, a.tokens, teacher.config().layers, a.stage1_fraction);
    d.train.warmup = std::max<index_t>(1, d.train.steps / 20);
    d.train.eval_every = eval_every;
    const index_t stage2_steps = d.train.steps;
    // Stages 0 and 1 first, scored at both ends; then stage 2 on the same student.
    out["plan"] = train::distiller<Teacher, Student>(teacher, student, d).describe();
    std::fprintf(stderr, "%s", out["plan"].get<std::string>().c_str());
    d.train.steps = 0;
    train::distiller<Teacher, Student> first(teacher, student, d);
    const index_t stage1_tokens = d.stage1_steps_per_layer * teacher.config().layers * per_step;
    if (d.init == train::student_init::attention) out["filter_fit"] = first.stage0(ctx, train_file.tokens());
    curve.push_back({0, train::evaluate(student, ctx, held_file.tokens(), eo).loss});
    auto d_opts = d;
    d_opts.init = train::student_init::random;  // stage 0 is done
    train::distill_result r1;
    if (d.stage1_steps_per_layer > 0) {
      r1 = train::distiller<Teacher, Student>(teacher, student, d_opts).run(ctx, train_file.tokens(),
                                                                             held_file.tokens());
      curve.push_back({stage1_tokens, train::evaluate(student, ctx, held_file.tokens(), eo).loss});
      out["fit_after_stage0"] = fit_json(r1.fit_initial);
      out["fit_after_stage1"] = fit_json(r1.fit);
    }
    d_opts.stage1_steps_per_layer = 0;
    d_opts.train.steps = stage2_steps;
    auto r2 = train::distiller<Teacher, Student>(teacher, student, d_opts).run(ctx, train_file.tokens(),
                                                                                held_file.tokens());
    for (auto& rec : r2.stage2.history)
      if (!std::isnan(rec.val_loss)) curve.push_back({stage1_tokens + rec.tokens, rec.val_loss});
    out["recipe"] = {{"init", a.init},
                     {"gates", a.gates},
                     {"branches", a.branches},
                     {"taylor_scale", a.taylor_scale},
                     {"stage1_fraction", a.stage1_fraction},
                     {"stage1_steps_per_layer", d.stage1_steps_per_layer},
                     {"operator_fraction", d.stage1_operator_fraction},
                     {"stage1_target", a.target},
                     {"stage1_lr", d.stage1_lr},
                     {"stage2_steps", stage2_steps},
                     {"lr", a.lr},
                     {"kd", a.kd},
                     {"tau", d.tau},
                     {"alpha", d.alpha},
                     {"beta", d.beta},
                     {"min_lr", d.train.min_lr},
                     {"weight_decay", d.train.adam.weight_decay},
                     {"beta2", d.train.adam.beta2},
                     {"filter_lr_scale", d.train.adam.filter_lr_scale},
                     {"freeze_shared", d.freeze_shared}};
  }
  out["train_seconds"] = now() - t0;
  out["curve"] = curve;
  out["student"] = score(student, teacher, ctx, held_file.tokens(), a.batch, a.seq);
  out["teacher_scores"] = score(teacher, teacher, ctx, held_file.tokens(), a.batch, a.seq);
  out["parameters"] = student.parameter_count();
  out["hyena"] = {{"order", a.order}, {"rank", a.rank}, {"filter_order", a.filter_order}};
  std::ofstream(fs::path(a.out) / "result.json") << out.dump(1) << '\n';
  std::printf("%s: held-out loss %.4f ppl %.3f KL %.4f (teacher ppl %.3f) in %.0f s\n", a.out.c_str(),
              out["student"]["loss"].get<double>(), out["student"]["ppl"].get<double>(),
              out["student"]["kl"].get<double>(), out["teacher_scores"]["ppl"].get<double>(),
              out["train_seconds"].get<double>());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"one run of the distillation ablation"};
  args a;
  app.add_option("--teacher", a.teacher, "llama2.c .bin or our gpt_neox checkpoint")->required()->check(CLI::ExistingFile);
  app.add_option("--train", a.train, "training token file");
  app.add_option("--held", a.held, "held-out token file");
  app.add_option("--sample", a.sample, "TRAIN,HELD: sample data-free corpora of these sizes from the teacher");
  app.add_option("--corpus", a.corpus, "where --sample keeps the corpora (default: beside --out)");
  app.add_option("--out", a.out, "run folder")->required();
  app.add_option("--variant", a.variant, "scratch or distill")->capture_default_str();
  app.add_option("--tokens", a.tokens, "student tokens (0 with --sample: only sample the corpora)")->required();
  app.add_option("--batch", a.batch)->capture_default_str();
  app.add_option("--seq", a.seq)->capture_default_str();
  app.add_option("--seed", a.seed)->capture_default_str();
  app.add_option("--eval-points", a.eval_points, "validation points along the run")->capture_default_str();
  app.add_option("--curve-tokens", a.curve_tokens, "held-out tokens each curve point scores (0: all)")
      ->capture_default_str();
  app.add_option("--init", a.init)->capture_default_str();
  app.add_option("--gates", a.gates)->capture_default_str();
  app.add_option("--branches", a.branches, "rank > 1: branches after the first start off or taylor")
      ->capture_default_str();
  app.add_option("--taylor-scale", a.taylor_scale, "gamma of --branches taylor")->capture_default_str();
  app.add_option("--target", a.target)->capture_default_str();
  app.add_option("--kd", a.kd)->capture_default_str();
  app.add_option("--stage1-fraction", a.stage1_fraction)->capture_default_str();
  app.add_option("--operator-fraction", a.operator_fraction, "default: the library's");
  app.add_option("--stage1-lr", a.stage1_lr, "default: the library's");
  app.add_option("--lr", a.lr, "stage 2 peak lr")->capture_default_str();
  app.add_option("--scratch-lr", a.scratch_lr)->capture_default_str();
  app.add_option("--tau", a.tau, "default: the library's");
  app.add_option("--alpha", a.alpha, "default: the library's");
  app.add_option("--beta", a.beta,
                 "weight of the stage-2 hidden-state MSE (default 0, which every variant before it was measured with; "
                 "the library's default is 1)")
      ->capture_default_str();
  app.add_option("--min-lr-ratio", a.min_lr_ratio, "stage 2 final lr / peak lr (cosine)")->capture_default_str();
  app.add_option("--filter-order", a.filter_order)->capture_default_str();
  app.add_option("--weight-decay", a.weight_decay, "AdamW weight decay (default: the library's)");
  app.add_option("--beta2", a.beta2, "AdamW beta2 (default: the library's)");
  app.add_option("--filter-lr-scale", a.filter_lr_scale, "lr multiplier of the Hyena filters (default: the library's)");
  app.add_flag("--freeze-shared", a.freeze_shared, "stage 2 trains the mixers only");
  app.add_option("--order", a.order)->capture_default_str();
  app.add_option("--rank", a.rank, "Hyena rank R (order 2)")->capture_default_str();
  app.add_option("--threads", a.threads)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  HYENA_CHECK(!a.sample.empty() || (!a.train.empty() && !a.held.empty()), "give --train and --held, or --sample");
  if (fs::path(a.teacher).extension() == ".bin") {
    auto teacher = io::load_llama2c<backend::cpu>(a.teacher);
    run(a, teacher);
  } else {
    models::gpt_neox<backend::cpu> teacher(train::checkpoint_config(a.teacher));
    train::load_checkpoint(a.teacher, teacher);
    run(a, teacher);
  }
  return 0;
}
