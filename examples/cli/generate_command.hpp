// generate_command.hpp: `hyena generate` on any backend (cmd_generate.cpp parses the options and
// runs it on the CPU; cuda_commands.cu on the GPU): text from a model, sampled token by token and
// printed as it comes.
//
// Decoding is incremental (--decode auto): a key/value cache for attention models, the exact
// O(t) path for Hyena students, or their modal recurrence when the checkpoint holds one
// (hyena convert --modal-order d). An empty prompt starts from the tokenizer's BOS.
#pragma once
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <hyena/io/load_tokenizer.hpp>
#include <hyena/train/generate.hpp>

#include "common.hpp"

namespace hyena::cli {

struct generate_cli_options {
  std::string model, prompt;
  std::string tokenizer = "byte", decode = "auto";
  index_t tokens = 200;
  train::sampling s;
  device_options dev;
};

// `hyena generate` with the model on backend Backend.
template <class Backend>
void run_generate_on(const generate_cli_options& o) {
  o.s.validate();
  HYENA_CHECK(o.tokens >= 0, "generate: --tokens must be >= 0, got ", o.tokens);
  const auto mode = train::parse_decode_mode(o.decode);
  auto tok = io::load_tokenizer(o.tokenizer);
  with_any_model_on<Backend>(o.model, [&](auto& model, const std::string& arch) {
    using M = std::decay_t<decltype(model)>;
    HYENA_CHECK(model.config().vocab >= tok->vocab_size(), "generate: tokenizer ", tok->name(), " has ",
                tok->vocab_size(), " tokens, model ", o.model, " only ", model.config().vocab);
    auto ctx = device_context<Backend>(o.dev);
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

}  // namespace hyena::cli
