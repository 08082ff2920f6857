// hyena eval: loss, perplexity and bits per byte of a checkpoint on a token file.
#include <cstdio>
#include <memory>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <hyena/io/token_file.hpp>
#include <hyena/train/evaluate.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace hyena::cli {
namespace {

struct eval_cli_options {
  std::string model, data;
  index_t batch = 8, seq = 0, max_tokens = 0;
  double words = 0;
  bool json = false;
  int threads = 0;
};

void run_eval(const eval_cli_options& o) {
  HYENA_CHECK(std::filesystem::is_regular_file(o.data), "eval: data file ", o.data, " not found");
  HYENA_CHECK(o.batch > 0 && o.seq >= 0 && o.max_tokens >= 0 && o.words >= 0,
              "eval: --batch must be positive and --seq, --max-tokens, --words >= 0");
  with_any_model(o.model, [&](auto& model, const std::string& arch) {
    const auto& cfg = model.config();
    io::token_file data(o.data);
    HYENA_CHECK(data.vocab() <= cfg.vocab, "eval: ", o.data, " has vocab ", data.vocab(), ", more than the model's ",
                cfg.vocab);
    HYENA_CHECK(data.size() >= 2, "eval: ", o.data, " needs at least 2 tokens, has ", data.size());
    const index_t seq = o.seq > 0 ? o.seq : cfg.max_seq;
    HYENA_CHECK(seq <= cfg.max_seq, "eval: --seq ", seq, " exceeds the model's max_seq ", cfg.max_seq);

    train::eval_options e{.batch = o.batch, .seq = seq, .max_tokens = o.max_tokens,
                          .source_bytes = double(data.source_bytes()), .source_words = o.words};
    auto ctx = make_context(o.threads);
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

}  // namespace

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
  sub->add_option("--threads", o->threads, "CPU threads (0: all)")->capture_default_str();
  sub->callback([o] { run_eval(*o); });
}

}  // namespace hyena::cli
