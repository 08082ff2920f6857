// hyena generate: text from a byte-level checkpoint (vocab 256), sampled token by token.
#include <cstdio>
#include <memory>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <hyena/io/load_tokenizer.hpp>
#include <hyena/train/generate.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace hyena::cli {
namespace {

struct generate_cli_options {
  std::string model, prompt;
  std::string tokenizer = "byte";
  index_t tokens = 200;
  train::sampling s;
  int threads = 0;
};

void run_generate(const generate_cli_options& o) {
  o.s.validate();
  HYENA_CHECK(!o.prompt.empty(), "generate: --prompt is empty");
  HYENA_CHECK(o.tokens >= 0, "generate: --tokens must be >= 0, got ", o.tokens);
  auto tok = io::load_tokenizer(o.tokenizer);
  with_any_model(o.model, [&](auto& model, const std::string&) {
    HYENA_CHECK(model.config().vocab >= tok->vocab_size(), "generate: tokenizer ", tok->name(), " has ",
                tok->vocab_size(), " tokens, model ", o.model, " only ", model.config().vocab);
    auto ctx = make_context(o.threads);
    std::vector<std::int32_t> prompt;
    if (tok->bos_id()) prompt.push_back(*tok->bos_id());  // models trained on documents start from BOS
    for (auto id : tok->encode(o.prompt)) prompt.push_back(id);
    auto ids = train::generate(model, ctx, prompt, o.tokens, o.s, tok->eos_id());
    std::string text = tok->decode(ids);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  });
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<generate_cli_options>();
  auto* sub = app.add_subcommand("generate", "Sample text from a model");
  sub->add_option("--model", o->model, "model: our checkpoint, a Hugging Face folder or a llama2.c .bin")->required();
  sub->add_option("--tokenizer", o->tokenizer, "byte, a tokenizer.json, a llama2.c tokenizer.bin, or a folder")
      ->capture_default_str();
  sub->add_option("--prompt", o->prompt, "text to continue")->required();
  sub->add_option("--tokens", o->tokens, "tokens (bytes) to generate")->capture_default_str();
  sub->add_option("--temperature", o->s.temperature, "0: greedy")->capture_default_str();
  sub->add_option("--top-k", o->s.top_k, "keep the k most likely tokens (0: all)")->capture_default_str();
  sub->add_option("--top-p", o->s.top_p, "keep the smallest set with this much mass (1: all)")
      ->capture_default_str();
  sub->add_option("--seed", o->s.seed, "sampling seed")->capture_default_str();
  sub->add_option("--threads", o->threads, "CPU threads (0: all)")->capture_default_str();
  sub->callback([o] { run_generate(*o); });
}

}  // namespace hyena::cli
