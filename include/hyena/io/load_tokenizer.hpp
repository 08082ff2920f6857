// io/load_tokenizer.hpp: a tokenizer from a command-line spec:
//   "byte"                        one token per byte
//   PATH/tokenizer.json (a file)  a Hugging Face byte-level BPE tokenizer
//   PATH/tokenizer.bin (a file)   a llama2.c tokenizer (scores + byte fallback)
//   PATH/ (a folder)              tokenizer.json inside it, else GPT-2's encoder.json + vocab.bpe
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "byte_tokenizer.hpp"
#include "gpt2_tokenizer.hpp"
#include "hf_tokenizer.hpp"
#include "llama2c_tokenizer.hpp"

namespace hyena::io {

inline std::unique_ptr<tokenizer> load_tokenizer(const std::string& spec) {
  namespace fs = std::filesystem;
  if (spec == "byte") return std::make_unique<byte_tokenizer>();
  const fs::path p(spec);
  if (fs::is_regular_file(p) && p.extension() == ".bin") return std::make_unique<llama2c_tokenizer>(spec);
  if (fs::is_regular_file(p)) return load_hf_tokenizer(spec);
  if (fs::is_directory(p)) {
    if (fs::is_regular_file(p / "tokenizer.json")) return load_hf_tokenizer((p / "tokenizer.json").string());
    if (fs::is_regular_file(p / "encoder.json") && fs::is_regular_file(p / "vocab.bpe")) return load_gpt2_tokenizer(p);
    HYENA_FAIL("tokenizer folder ", spec, " has neither tokenizer.json nor encoder.json + vocab.bpe");
  }
  HYENA_FAIL("unknown tokenizer '", spec,
             "' (use byte, a tokenizer.json file, a llama2.c tokenizer.bin, or a folder with tokenizer.json or encoder.json + vocab.bpe)");
}

}  // namespace hyena::io
