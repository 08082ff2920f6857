// hyena distill: turn a trained teacher checkpoint into a Hyena student.
#include <cstdio>

#include "commands.hpp"
#include "pipeline.hpp"

namespace hyena::cli {

namespace {
struct distill_args {
  std::string teacher, train, valid, out, target = "mixer";
  train::distill_options o;
  index_t filter_order = 0, order = 2;
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
      models::model_config hyena_fields = teacher.config();
      hyena_fields.hyena_order = a.order;
      if (a.filter_order > 0) hyena_fields.hyena_filter_order = a.filter_order;
      rng r(a.o.seed);
      auto student = models::make_student<Student>(teacher, r, &hyena_fields);
      auto o = a.o;
      o.stage1_target = a.target == "block" ? train::transfer_target::block_output : train::transfer_target::mixer_output;
      o.run_dir = a.out;
      auto report = distill_student(teacher, student, ctx, o, train_file.tokens(), valid_file.tokens(), "distilled");
      save_model(a.out + "/model.safetensors", student, student_arch(arch));
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
  auto* c = app.add_subcommand("distill", "distill a teacher checkpoint into a Hyena student (layer-wise transfer, then end-to-end KD)");
  c->add_option("--teacher", a->teacher, "teacher: our checkpoint, a Hugging Face folder or a llama2.c .bin")->required()->check(CLI::ExistingPath);
  c->add_option("--train", a->train, "training token file")->required()->check(CLI::ExistingFile);
  c->add_option("--valid", a->valid, "validation token file")->check(CLI::ExistingFile);
  c->add_option("--out", a->out, "output folder (model.safetensors, metrics.jsonl)")->required();
  c->add_option("--batch", a->o.batch, "sequences per step")->capture_default_str();
  c->add_option("--seq", a->o.seq, "tokens per sequence")->capture_default_str();
  c->add_option("--seed", a->o.seed, "seed of the student's fresh mixers and the data order")->capture_default_str();
  c->add_option("--stage1-tokens-per-layer", a->o.stage1_tokens_per_layer, "stage 1 budget per layer (0 skips)")->capture_default_str();
  c->add_option("--stage1-lr", a->o.stage1_lr, "stage 1 learning rate")->capture_default_str();
  c->add_option("--target", a->target, "stage 1 target: mixer (teacher mixer output from the same input) or block (block output)")
      ->check(CLI::IsMember({"mixer", "block"}))->capture_default_str();
  c->add_flag("!--no-freeze", a->o.freeze_transferred, "block target: keep training lower mixers");
  c->add_option("--stage2-tokens", a->o.stage2_tokens, "stage 2 budget (0 skips)")->capture_default_str();
  c->add_option("--stage2-lr", a->o.stage2_lr, "stage 2 peak learning rate")->capture_default_str();
  c->add_option("--tau", a->o.tau, "distillation temperature")->capture_default_str();
  c->add_option("--alpha", a->o.alpha, "weight of KL (1-alpha on cross-entropy)")->capture_default_str();
  c->add_option("--beta", a->o.beta, "weight of the hidden-state MSE")->capture_default_str();
  c->add_flag("--freeze-shared", a->o.freeze_shared, "stage 2 trains the mixers only");
  c->add_option("--eval-every", a->o.eval_every, "validate every N stage-2 steps")->capture_default_str();
  c->add_option("--eval-tokens", a->o.eval.max_tokens, "validation tokens (0: all)")->capture_default_str();
  c->add_option("--order", a->order, "Hyena order N")->capture_default_str();
  c->add_option("--filter-order", a->filter_order, "width of the implicit filter FFN (default: the teacher config's)");
  c->add_option("--threads", a->threads, "threads (default: all)");
  c->callback([a] { run_distill(*a); });
}

}  // namespace hyena::cli
