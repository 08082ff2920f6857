// hyena prepare: a text file -> token file(s), optionally split into train and validation.
#include <cstdio>
#include <memory>

#include <hyena/io/load_tokenizer.hpp>
#include <hyena/io/token_file.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace hyena::cli {
namespace {

struct prepare_options {
  std::string input, output, tokenizer = "byte", valid_output;
  double valid_fraction = 0;
};

// "byte", a Hugging Face tokenizer.json, a llama2.c tokenizer.bin, or a folder (tokenizer.json, or
// GPT-2's encoder.json + vocab.bpe): io/load_tokenizer.hpp.
std::unique_ptr<io::tokenizer> make_tokenizer(const std::string& spec) { return io::load_tokenizer(spec); }

void report(const std::string& path, const io::prepared_file& f) {
  std::printf("%s: %lld tokens, %llu bytes, %.3f bytes/token\n", path.c_str(), (long long)f.tokens,
              (unsigned long long)f.bytes, f.tokens ? double(f.bytes) / double(f.tokens) : 0.0);
}

void run_prepare(const prepare_options& o) {
  auto tok = make_tokenizer(o.tokenizer);
  HYENA_CHECK(std::filesystem::is_regular_file(o.input), "prepare: input file ", o.input, " not found");
  const bool split = o.valid_fraction > 0 || !o.valid_output.empty();
  if (!split) {
    report(o.output, io::prepare_token_file(o.input, o.output, *tok));
    return;
  }
  HYENA_CHECK(!o.valid_output.empty(), "prepare: --valid-fraction needs --valid-output");
  HYENA_CHECK(o.valid_fraction > 0 && o.valid_fraction < 1, "prepare: --valid-fraction must be in (0, 1), got ",
              o.valid_fraction);
  HYENA_CHECK(o.valid_output != o.output, "prepare: --output and --valid-output are the same file");
  auto [train, valid] = io::prepare_token_split(o.input, o.output, o.valid_output, *tok, o.valid_fraction);
  report(o.output, train);
  report(o.valid_output, valid);
}

}  // namespace

void add_prepare_command(CLI::App& app) {
  auto o = std::make_shared<prepare_options>();
  auto* sub = app.add_subcommand("prepare", "Tokenize a text file into a token file (.tok)");
  sub->add_option("--input", o->input, "UTF-8 text file")->required();
  sub->add_option("--output", o->output, "token file to write (the training part when splitting)")->required();
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer: byte, PATH/tokenizer.json, a llama2.c PATH/tokenizer.bin, or a folder "
                  "with tokenizer.json or encoder.json + vocab.bpe")->capture_default_str();
  sub->add_option("--valid-fraction", o->valid_fraction, "fraction of the tokens (the end) to hold out");
  sub->add_option("--valid-output", o->valid_output, "token file for the held-out part");
  sub->callback([o] { run_prepare(*o); });
}

}  // namespace hyena::cli
