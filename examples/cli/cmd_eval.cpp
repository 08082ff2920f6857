// hyena eval: loss, perplexity and bits per byte of a checkpoint on a token file (eval_command.hpp).
#include <memory>

#include "commands.hpp"
#include "cuda_commands.hpp"
#include "eval_command.hpp"

namespace hyena::cli {

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<eval_cli_options>();
  auto* sub = app.add_subcommand("eval", "Loss, perplexity and bits per byte of a checkpoint on a token file");
  sub->add_option("--model", o->model, "model: our checkpoint, a Hugging Face folder or a llama2.c .bin")->required();
  sub->add_option("--data", o->data, "token file to score")->required();
  sub->add_option("--batch", o->batch, "windows per batch")->capture_default_str();
  sub->add_option("--seq", o->seq, "window length (0: the model's max_seq)")->capture_default_str();
  sub->add_option("--max-tokens", o->max_tokens, "stop after scoring this many tokens (0: all)")
      ->capture_default_str();
  sub->add_option("--words", o->words, "words in the text, for word-level perplexity");
  sub->add_flag("--json", o->json, "print one JSON object");
  add_device_options(sub, o->dev);
  sub->callback([o] {
    if (o->dev.name == "cuda") return eval_on_cuda(*o);
    run_eval_on<backend::cpu>(*o);
  });
}

}  // namespace hyena::cli
