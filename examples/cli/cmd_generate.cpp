// hyena generate: text from a model, sampled token by token and printed as it comes.
//
// Decoding is incremental (--decode auto): a key/value cache for attention models, the exact
// O(t) path for Hyena students, or their modal recurrence when the checkpoint holds one
// (hyena convert --modal-order d). An empty prompt starts from the tokenizer's BOS.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

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
  std::string tokenizer = "byte", decode = "auto";
  index_t tokens = 200;
  train::sampling s;
  int threads = 0;
};

void run_generate(const generate_cli_options& o) {
  o.s.validate();
  HYENA_CHECK(o.tokens >= 0, "generate: --tokens must be >= 0, got ", o.tokens);
  const auto mode = train::parse_decode_mode(o.decode);
  auto tok = io::load_tokenizer(o.tokenizer);
  with_any_model(o.model, [&](auto& model, const std::string& arch) {
    using M = std::decay_t<decltype(model)>;
    HYENA_CHECK(model.config().vocab >= tok->vocab_size(), "generate: tokenizer ", tok->name(), " has ",
                tok->vocab_size(), " tokens, model ", o.model, " only ", model.config().vocab);
    auto ctx = make_context(o.threads);
    std::vector<std::int32_t> prompt;
    if (tok->bos_id()) prompt.push_back(*tok->bos_id());  // models trained on documents start from BOS
    for (auto id : tok->encode(o.prompt)) prompt.push_back(id);
    HYENA_CHECK(!prompt.empty(), "generate: --prompt is empty and tokenizer ", tok->name(),
                " has no BOS token to start from");
    train::generate_options<typename M::scalar> go;
    go.stop_token = tok->eos_id();
    go.decode = mode;
    std::optional<nn::hyena_modal_form<typename M::scalar>> modal;
    if (std::filesystem::path(o.model).extension() == ".safetensors" && arch.rfind("hyena_", 0) == 0)
      modal = train::load_modal_form<typename M::scalar>(o.model, model.config().layers);
    if (modal && mode != train::decode_mode::exact && mode != train::decode_mode::recompute) go.modal = &*modal;
    HYENA_CHECK(mode != train::decode_mode::modal || modal, "generate: --decode modal needs a checkpoint with a "
                "modal form (hyena convert --modal-order d); ", o.model, " has none");
    // Streaming: print what the text gained with each token (tokens need not be whole characters).
    std::vector<std::int32_t> so_far = prompt;
    std::string printed = tok->decode(so_far);
    std::fwrite(printed.data(), 1, printed.size(), stdout);
    std::fflush(stdout);
    go.on_token = [&](std::int32_t id) {
      so_far.push_back(id);
      const std::string text = tok->decode(so_far);
      if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0) {
        std::fwrite(text.data() + printed.size(), 1, text.size() - printed.size(), stdout);
        std::fflush(stdout);
        printed = text;
      }
    };
    train::generate(model, ctx, prompt, o.tokens, o.s, go);
    const std::string text = tok->decode(so_far);  // anything a later token rewrote
    if (text.compare(0, printed.size(), printed) == 0)
      std::fwrite(text.data() + printed.size(), 1, text.size() - printed.size(), stdout);
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
  sub->add_option("--threads", o->threads, "CPU threads (0: all)")->capture_default_str();
  sub->callback([o] { run_generate(*o); });
}

}  // namespace hyena::cli
