// io/gpt2_tokenizer.hpp: OpenAI's GPT-2 tokenizer from its original files, encoder.json (token ->
// id) and vocab.bpe (a "#version" line, then one merge "a b" per line, best first). It encodes
// as Hugging Face's GPT-2 tokenizer does: no normaliser, ByteLevel without a prefix space, GPT-2's
// regex, and "<|endoftext|>" (id 50256) split out as a special token wherever it appears
// (OpenAI's encoder.py would instead encode that text as ordinary characters).
#pragma once
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bpe_tokenizer.hpp"

namespace hyena::io {

inline std::unique_ptr<bpe_tokenizer> load_gpt2_tokenizer(const std::string& encoder_json, const std::string& vocab_bpe) {
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    HYENA_CHECK(in.good(), "tokenizer ", path, ": cannot open the file");
    std::ostringstream buf;
    buf << in.rdbuf();
    return buf.str();
  };
  nlohmann::json enc;
  try {
    enc = nlohmann::json::parse(read(encoder_json));
  } catch (const nlohmann::json::exception& e) {
    HYENA_FAIL("tokenizer ", encoder_json, ": not valid JSON (", e.what(), ")");
  }
  HYENA_CHECK(enc.is_object(), "tokenizer ", encoder_json, ": not a JSON object of token -> id");
  std::unordered_map<std::string, std::int32_t> ids;
  std::int32_t max_id = -1;
  for (const auto& [tok, id] : enc.items()) {
    HYENA_CHECK(id.is_number_integer() && id.get<std::int64_t>() >= 0 && id.get<std::int64_t>() < 0x7FFFFFFF,
                "tokenizer ", encoder_json, ": token '", tok, "' has a bad id");
    ids.emplace(tok, id.get<std::int32_t>());
    max_id = std::max(max_id, id.get<std::int32_t>());
  }
  // Ids are nearly dense, as in tokenizer.json (hf_tokenizer.hpp): none at or beyond twice the
  // number of tokens plus 1024, so a small file cannot ask for a table of 2^31 strings.
  const std::size_t limit = 2 * ids.size() + 1024;
  HYENA_CHECK(max_id < 0 || std::size_t(max_id) < limit, "tokenizer ", encoder_json, ": id ", max_id,
              " is far beyond the ", ids.size(), " tokens the file defines (ids must be below ", limit, ")");
  std::vector<std::string> vocab(std::size_t(max_id + 1));
  for (const auto& [tok, id] : ids) {
    HYENA_CHECK(vocab[std::size_t(id)].empty(), "tokenizer ", encoder_json, ": id ", id, " is used twice");
    vocab[std::size_t(id)] = tok;
  }

  std::vector<std::pair<std::int32_t, std::int32_t>> merges;
  std::istringstream lines(read(vocab_bpe));
  std::string line;
  for (std::size_t n = 1; std::getline(lines, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (n == 1 && line.rfind("#version", 0) == 0)) continue;
    const auto sp = line.find(' ');
    HYENA_CHECK(sp != std::string::npos && line.find(' ', sp + 1) == std::string::npos, "tokenizer ", vocab_bpe,
                ": line ", n, " is not two tokens separated by one space");
    const std::string a = line.substr(0, sp), b = line.substr(sp + 1);
    auto ia = ids.find(a), ib = ids.find(b);
    HYENA_CHECK(ia != ids.end() && ib != ids.end(), "tokenizer ", vocab_bpe, ": line ", n, " names unknown token '",
                ia == ids.end() ? a : b, "'");
    HYENA_CHECK(ids.count(a + b), "tokenizer ", vocab_bpe, ": line ", n, " gives '", a + b,
                "', which is not in encoder.json");
    merges.emplace_back(ia->second, ib->second);
  }

  std::vector<added_token> added;
  bpe_tokenizer_options opt;
  opt.name = "gpt2";
  if (auto it = ids.find("<|endoftext|>"); it != ids.end()) {
    added.push_back({"<|endoftext|>", it->second, true, false});
    opt.bos = opt.eos = it->second;
  }
  return std::make_unique<bpe_tokenizer>(std::make_unique<bpe_model>(std::move(vocab), merges), std::move(added),
                                         std::move(opt));
}

// A folder holding encoder.json and vocab.bpe.
inline std::unique_ptr<bpe_tokenizer> load_gpt2_tokenizer(const std::filesystem::path& folder) {
  return load_gpt2_tokenizer((folder / "encoder.json").string(), (folder / "vocab.bpe").string());
}

}  // namespace hyena::io
