// hyena distill: turn a trained teacher into a Hyena student.
//
// With no budget flags it runs the recipe docs/results.md measured best (attention
// initialisation, operator then mixer-output alignment, forward KL end to end) over one pass
// of the training file, and prints the plan before it starts. Rerunning with the same --out
// resumes in the stage the checkpoint was written by.
#include <cstdio>

#include "commands.hpp"
#include "pipeline.hpp"

namespace hyena::cli {

namespace {
struct distill_args {
  std::string teacher, train, valid, out, target = "mixer", init = "attention", gates = "ones", kd = "forward";
  train::distill_options o;  // the library's defaults are the measured recipe
  index_t tokens = 0, stage1_tokens_per_layer = -1, stage2_tokens = -1, filter_order = 0, order = 2;
  double stage1_fraction = train::recommended_stage1_fraction;
  bool no_resume = false;
  int threads = 0;
};

void run_distill(const distill_args& a) {
  auto ctx = make_context(a.threads);
  with_any_model(a.teacher, [&](auto& teacher, const std::string& arch) {
    using Teacher = std::decay_t<decltype(teacher)>;
    if constexpr (std::is_same_v<Teacher, gpt_neox> || std::is_same_v<Teacher, llama>) {
      using Student = models::hyena_student<Teacher>;
      auto train_file = open_tokens(a.train, teacher.config().vocab);
      io::token_file valid_file;
      if (!a.valid.empty()) valid_file = open_tokens(a.valid, teacher.config().vocab);
      nn::hyena_hparams h;
      h.order = a.order;
      if (a.filter_order > 0) h.filter_order = a.filter_order;
      rng r(a.o.train.seed);
      auto student = models::make_student<Student>(teacher, r, h);
      auto o = a.o;
      o.train.run_dir = a.out;
      o.train.resume = !a.no_resume;
      o.train.comm = &world();  // data parallel under mpirun; batch is per rank
      o.stage1_target = a.target == "block" ? train::transfer_target::block_output : train::transfer_target::mixer_output;
      o.init = a.init == "random" ? train::student_init::random : train::student_init::attention;
      o.attention.gates = a.gates == "qk" ? train::gate_init::qk : train::gate_init::ones;
      train::parse_kd(a.kd, o);
      if (o.init == train::student_init::random && a.order != 2) o.stage1_operator_fraction = 0;
      if (a.order != 2 && o.stage1_operator_fraction > 0) {
        std::fprintf(stderr, "distill: operator alignment is defined for order 2; order %lld uses output alignment only\n",
                     (long long)a.order);
        o.stage1_operator_fraction = 0;
      }
      HYENA_CHECK(o.train.seq <= teacher.config().max_seq, "distill: --seq ", o.train.seq,
                  " exceeds the teacher's max_seq ", teacher.config().max_seq);
      // The budget: explicit per-stage tokens, else --tokens (default: one pass over the file).
      const index_t per_step = o.train.tokens_per_step(), layers = teacher.config().layers;
      const index_t budget = a.tokens > 0 ? a.tokens : train_file.size();
      train::set_token_budget(o, budget, layers, a.stage1_fraction);
      if (a.stage1_tokens_per_layer >= 0) o.stage1_steps_per_layer = a.stage1_tokens_per_layer / per_step;
      if (a.stage2_tokens >= 0) o.train.steps = a.stage2_tokens / per_step;
      o.train.warmup = std::max<index_t>(1, o.train.steps / 20);
      if (o.train.eval_every == 0) o.train.eval_every = std::max<index_t>(1, o.train.steps / 10);
      HYENA_CHECK(o.stage1_steps_per_layer > 0 || o.train.steps > 0, "distill: the budget is below one step of ",
                  per_step, " tokens (batch x seq); raise --tokens or lower --batch/--seq");
      train::distiller<Teacher, Student> d(teacher, student, o);
      std::printf("distill: %s teacher %s -> %s student (%lld parameters)\n%s", arch.c_str(), a.teacher.c_str(),
                  student_arch(arch).c_str(), (long long)student.parameter_count(), d.describe().c_str());
      std::fflush(stdout);
      auto report = run_distiller(d, student, ctx, train_file.tokens(), valid_file.tokens(), "distilled");
      if (world().is_root()) save_model(a.out + "/model.safetensors", student, student_arch(arch));
      std::printf("distilled %s -> %s on %lld tokens in %.1f s; model written to %s/model.safetensors\n", arch.c_str(),
                  student_arch(arch).c_str(), (long long)report.tokens, report.seconds, a.out.c_str());
      if (!report.curve.empty())
        std::printf("final validation loss %.4f (perplexity %.2f)\n", report.curve.back().second,
                    std::exp(report.curve.back().second));
    } else {
      HYENA_FAIL("distill: the teacher must be a gpt_neox or llama checkpoint, ", a.teacher, " is ", arch);
    }
  });
}
}  // namespace

void add_distill_command(CLI::App& app) {
  auto a = std::make_shared<distill_args>();
  auto* c = app.add_subcommand("distill", "distill a teacher into a Hyena student (attention initialisation, layer-wise "
                                          "operator and output alignment, then end-to-end KD)");
  c->add_option("--teacher", a->teacher, "teacher: our checkpoint, a Hugging Face folder or a llama2.c .bin")->required()->check(CLI::ExistingPath);
  c->add_option("--train", a->train, "training token file")->required()->check(CLI::ExistingFile);
  c->add_option("--valid", a->valid, "validation token file")->check(CLI::ExistingFile);
  c->add_option("--out", a->out, "output folder (model.safetensors, metrics.jsonl, checkpoint.safetensors)")->required();
  c->add_option("--tokens", a->tokens, "student tokens in all (default: one pass over --train)");
  c->add_option("--stage1-fraction", a->stage1_fraction, "share of the budget spent in stage 1")->capture_default_str();
  c->add_option("--stage1-tokens-per-layer", a->stage1_tokens_per_layer, "stage 1 tokens per layer (overrides the split; 0 skips)");
  c->add_option("--stage2-tokens", a->stage2_tokens, "stage 2 tokens (overrides the split; 0 skips)");
  c->add_option("--batch", a->o.train.batch, "sequences per step (per rank under mpirun)")->capture_default_str();
  c->add_option("--seq", a->o.train.seq, "tokens per sequence")->capture_default_str();
  c->add_option("--seed", a->o.train.seed, "seed of the data order (and of any random mixer initialisation)")->capture_default_str();
  c->add_option("--init", a->init, "stage 0: mixers from the teacher's attention, or at random")
      ->check(CLI::IsMember({"attention", "random"}))->capture_default_str();
  c->add_option("--gates", a->gates, "attention init: gates at 1, or the linear-attention reading x0 <- q, x1 <- k")
      ->check(CLI::IsMember({"ones", "qk"}))->capture_default_str();
  c->add_option("--operator-fraction", a->o.stage1_operator_fraction,
                "share of each layer's stage 1 spent aligning the mixing matrices with attention (order 2)")->capture_default_str();
  c->add_option("--stage1-lr", a->o.stage1_lr, "stage 1 learning rate")->capture_default_str();
  c->add_option("--target", a->target, "stage 1 output target: mixer (teacher mixer output from the same input) or block (block output)")
      ->check(CLI::IsMember({"mixer", "block"}))->capture_default_str();
  c->add_flag("!--no-freeze", a->o.freeze_transferred, "block target: keep training lower mixers");
  c->add_option("--lr", a->o.train.lr, "stage 2 peak learning rate")->capture_default_str();
  c->add_option("--min-lr", a->o.train.min_lr, "stage 2 final learning rate")->capture_default_str();
  c->add_option("--kd", a->kd, "stage 2 divergence: forward, reverse or topk:K (KL over the teacher's top K tokens)")
      ->capture_default_str();
  c->add_option("--tau", a->o.tau, "distillation temperature")->capture_default_str();
  c->add_option("--alpha", a->o.alpha, "weight of the divergence (1-alpha on cross-entropy)")->capture_default_str();
  c->add_option("--beta", a->o.beta, "weight of the hidden-state MSE")->capture_default_str();
  c->add_flag("--freeze-shared", a->o.freeze_shared, "stage 2 trains the mixers only");
  c->add_option("--eval-every", a->o.train.eval_every, "validate every N stage-2 steps (default: 10 times)");
  c->add_option("--eval-tokens", a->o.train.eval.max_tokens, "validation tokens (0: all)")->capture_default_str();
  c->add_option("--checkpoint-every", a->o.train.checkpoint_every, "checkpoint every N steps (always at each stage's end)")
      ->capture_default_str();
  c->add_option("--skip-nonfinite", a->o.train.skip_nonfinite, "skip up to N steps whose loss or gradient is NaN/inf")
      ->capture_default_str();
  c->add_flag("--no-resume", a->no_resume, "start afresh even if --out has a checkpoint");
  c->add_option("--order", a->order, "Hyena order N")->capture_default_str();
  c->add_option("--filter-order", a->filter_order, "width of the implicit filter FFN (default 64)");
  c->add_option("--threads", a->threads, "threads (default: all)");
  c->callback([a] { run_distill(*a); });
}

}  // namespace hyena::cli
