// hyena distill: turn a trained teacher into a Hyena student (distill_command.hpp).
#include <memory>

#include "commands.hpp"
#include "cuda_commands.hpp"
#include "distill_command.hpp"

namespace hyena::cli {

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
  auto* operator_fraction =
      c->add_option("--operator-fraction", a->o.stage1_operator_fraction,
                    "share of each layer's stage 1 spent aligning the mixing matrices with attention (order 2, rank 1)")
          ->capture_default_str();
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
  c->add_option("--rank", a->rank, "Hyena rank R: gate pairs of an order-2 operator (nn/hyena.hpp; default 4 at "
                 "order 2, the measured best for its cost; 1 at higher orders)");
  c->add_option("--branches", a->branches, "rank > 1: the branches after the first start off (x0 = 0) or as the "
                 "first-order terms of the teacher's softmax score (taylor)")->capture_default_str();
  c->add_option("--filter-order", a->filter_order, "width of the implicit filter FFN (default 64)");
  add_device_options(c, a->dev);
  c->callback([a, operator_fraction] {
    a->operator_fraction_given = operator_fraction->count() > 0;
    if (a->dev.name == "cuda") return distill_on_cuda(*a);
    run_distill_on<backend::cpu>(*a);
  });
}

}  // namespace hyena::cli
