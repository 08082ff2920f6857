// eval_command.hpp: `hyena eval` (loss, perplexity and bits per byte of a checkpoint on a token
// file) on any backend; cmd_eval.cpp parses the options and runs it on the CPU, cuda_commands.cu
// on the GPU.
#pragma once
#include <cstdio>
#include <filesystem>
#include <string>

#include <hyena/io/token_file.hpp>
#include <hyena/train/evaluate.hpp>

#include "common.hpp"

namespace hyena::cli {

struct eval_cli_options {
  std::string model, data;
  index_t batch = 8, seq = 0, max_tokens = 0;
  double words = 0;
  bool json = false;
  device_options dev;
};

// `hyena eval` with the model on backend Backend.
template <class Backend>
void run_eval_on(const eval_cli_options& o) {
  HYENA_CHECK(std::filesystem::is_regular_file(o.data), "eval: data file ", o.data, " not found");
  HYENA_CHECK(o.batch > 0 && o.seq >= 0 && o.max_tokens >= 0 && o.words >= 0,
              "eval: --batch must be positive and --seq, --max-tokens, --words >= 0");
  with_any_model_on<Backend>(o.model, [&](auto& model, const std::string& arch) {
    const auto& cfg = model.config();
    io::token_file data(o.data);
    HYENA_CHECK(data.vocab() <= cfg.vocab, "eval: ", o.data, " has vocab ", data.vocab(), ", more than the model's ",
                cfg.vocab);
    HYENA_CHECK(data.size() >= 2, "eval: ", o.data, " needs at least 2 tokens, has ", data.size());
    const index_t seq = o.seq > 0 ? o.seq : cfg.max_seq;
    HYENA_CHECK(seq <= cfg.max_seq, "eval: --seq ", seq, " exceeds the model's max_seq ", cfg.max_seq);

    train::eval_options e{.batch = o.batch, .seq = seq, .max_tokens = o.max_tokens,
                          .source_bytes = double(data.source_bytes()), .source_words = o.words};
    auto ctx = device_context<Backend>(o.dev);
    auto r = train::evaluate(model, ctx, data.tokens(), e);

    if (o.json) {
      nlohmann::json j{{"model", o.model}, {"data", o.data},       {"arch", arch},
                       {"tokens", r.tokens}, {"loss", r.loss}, {"perplexity", r.perplexity}};
      if (e.source_bytes > 0) j["bits_per_byte"] = r.bits_per_byte;
      if (o.words > 0) j["word_perplexity"] = r.word_perplexity;
      std::printf("%s\n", j.dump().c_str());
      return;
    }
    std::printf("%s (%s) on %s: %lld tokens\n", o.model.c_str(), arch.c_str(), o.data.c_str(), (long long)r.tokens);
    std::printf("loss %.4f  perplexity %.3f", r.loss, r.perplexity);
    if (e.source_bytes > 0) std::printf("  bits/byte %.4f", r.bits_per_byte);
    if (o.words > 0) std::printf("  word perplexity %.3f", r.word_perplexity);
    std::printf("\n");
  });
}

}  // namespace hyena::cli
