// hyena generate: text from a model, sampled token by token (generate_command.hpp).
#include <memory>

#include "commands.hpp"
#include "cuda_commands.hpp"
#include "generate_command.hpp"

namespace hyena::cli {

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<generate_cli_options>();
  auto* sub = app.add_subcommand("generate", "Sample text from a model");
  sub->add_option("--model", o->model, "model: our checkpoint, a Hugging Face folder or a llama2.c .bin")->required();
  sub->add_option("--tokenizer", o->tokenizer, "byte, a tokenizer.json, a llama2.c tokenizer.bin, or a folder")
      ->capture_default_str();
  sub->add_option("--prompt", o->prompt, "text to continue (empty: start from the tokenizer's BOS)");
  sub->add_option("--tokens", o->tokens, "tokens (bytes) to generate")->capture_default_str();
  sub->add_option("--temperature", o->s.temperature, "0: greedy")->capture_default_str();
  sub->add_option("--top-k", o->s.top_k, "keep the k most likely tokens (0: all)")->capture_default_str();
  sub->add_option("--top-p", o->s.top_p, "keep the smallest set with this much mass (1: all)")
      ->capture_default_str();
  sub->add_option("--seed", o->s.seed, "sampling seed")->capture_default_str();
  sub->add_option("--decode", o->decode, "auto (modal when the checkpoint has a modal form, else exact), exact, "
                  "modal or recompute (the whole window per token)")
      ->check(CLI::IsMember({"auto", "exact", "modal", "recompute"}))->capture_default_str();
  add_device_options(sub, o->dev);
  sub->callback([o] {
    if (o->dev.name == "cuda") return generate_on_cuda(*o);
    run_generate_on<backend::cpu>(*o);
  });
}

}  // namespace hyena::cli
