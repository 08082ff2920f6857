// hyena train: a teacher or student trained from scratch on a token file (train_command.hpp).
#include <memory>

#include "commands.hpp"
#include "cuda_commands.hpp"
#include "train_command.hpp"

namespace hyena::cli {

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<train_cli_options>();
  auto* sub = app.add_subcommand("train", "Train a model from scratch on a token file (resumes when re-run)");
  sub->add_option("--arch", o->arch, known_archs() + " (or --teacher)");
  sub->add_option("--teacher", o->teacher,
                  "continue training this model instead (a Hugging Face folder, a llama2.c .bin or our checkpoint)");
  sub->add_option("--preset", o->preset, "model shape: tiny, small or pythia-70m");
  sub->add_option("--config", o->config, "model shape as JSON (inline or a file); vocab defaults to the data's");
  sub->add_option("--train", o->train_path, "training token file")->required();
  sub->add_option("--valid", o->valid_path, "validation token file");
  sub->add_option("--out", o->out, "run folder (metrics.jsonl, checkpoint.safetensors, model.safetensors)")
      ->required();
  sub->add_option("--steps", o->steps, "optimizer steps")->required();
  sub->add_option("--batch", o->batch, "sequences per micro-batch (per rank under mpirun)")->capture_default_str();
  sub->add_option("--seq", o->seq, "tokens per sequence (0: the model's max_seq)")->capture_default_str();
  sub->add_option("--lr", o->lr, "peak learning rate")->capture_default_str();
  sub->add_option("--min-lr", o->min_lr, "final learning rate of the cosine schedule")->capture_default_str();
  sub->add_option("--warmup", o->warmup, "linear warmup steps")->capture_default_str();
  sub->add_option("--grad-accum", o->grad_accum, "micro-batches per step")->capture_default_str();
  sub->add_option("--clip", o->clip, "global gradient-norm clip (<= 0: off)")->capture_default_str();
  sub->add_option("--weight-decay", o->weight_decay, "AdamW weight decay")->capture_default_str();
  sub->add_option("--seed", o->seed, "initialisation and data order")->capture_default_str();
  sub->add_option("--eval-every", o->eval_every, "validate every N steps (0: at the end only)")
      ->capture_default_str();
  sub->add_option("--eval-tokens", o->eval_tokens, "validation tokens to score (0: the whole file)")
      ->capture_default_str();
  sub->add_option("--checkpoint-every", o->checkpoint_every, "checkpoint every N steps (0: at the end only)")
      ->capture_default_str();
  sub->add_flag("--no-resume", o->no_resume, "start over even if RUN_DIR has a checkpoint");
  add_device_options(sub, o->dev);
  sub->callback([o] {
    if (o->dev.name == "cuda") return train_on_cuda(*o);
    run_train_on<backend::cpu>(*o);
  });
}

}  // namespace hyena::cli
