// io/hf_tokenizer.hpp: loads a Hugging Face tokenizer.json whose model is byte-level BPE
// (GPT-2, GPT-NeoX-20B / Pythia, and the like) into a bpe_tokenizer.
// Supported: model BPE (vocab; merges as "a b" strings or [a, b] pairs; unk_token, fuse_unk,
// ignore_merges); normalizer null, NFC, or a Sequence of those; pre_tokenizer ByteLevel
// (add_prefix_space, use_regex), a Sequence holding one, or Sequence[Split(GPT-2's regex,
// Isolated), ByteLevel(use_regex=false)]; decoder ByteLevel (or a Sequence of it); added_tokens
// (special or not, normalized or not). post_processor is ignored (the interface adds no bos/eos).
// Anything else (another model type, dropout, subword prefixes, byte_fallback, lstrip/rstrip/
// single_word added tokens, other normalizers or pre-tokenizers) throws one hyena::error that
// names the file and the problem, rather than encoding differently from HF.
#pragma once
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bpe_tokenizer.hpp"

namespace hyena::io {

namespace hf_detail {
using json = nlohmann::json;

inline constexpr std::string_view gpt2_regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

inline bool flag(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : it->get<bool>();
}
inline std::string type_of(const json& j) {
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string("?");
}

struct loader {
  std::string source;  // the file name, for messages

  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    HYENA_FAIL("tokenizer ", source, ": ", parts...);
  }

  void normalizer(const json& j, bpe_tokenizer_options& opt) const {
    if (j.is_null()) return;
    const std::string t = type_of(j);
    if (t == "NFC") {
      opt.nfc = true;
    } else if (t == "Sequence" && j.contains("normalizers") && j["normalizers"].is_array()) {
      for (const auto& n : j["normalizers"]) normalizer(n, opt);
    } else {
      fail("unsupported normalizer '", t, "' (supported: NFC, Sequence of NFC)");
    }
  }

  void byte_level(const json& j, bpe_tokenizer_options& opt) const {
    opt.add_prefix_space = flag(j, "add_prefix_space", true);  // the HF defaults
    opt.use_regex = flag(j, "use_regex", true);
  }

  void pre_tokenizer(const json& j, bpe_tokenizer_options& opt) const {
    const std::string t = j.is_null() ? std::string("null") : type_of(j);
    if (t == "ByteLevel") return byte_level(j, opt);
    if (t == "Sequence" && j.contains("pretokenizers") && j["pretokenizers"].is_array()) {
      const auto& seq = j["pretokenizers"];
      if (seq.size() == 1 && type_of(seq[0]) == "ByteLevel") return byte_level(seq[0], opt);
      if (seq.size() == 2 && type_of(seq[0]) == "Split" && type_of(seq[1]) == "ByteLevel") {
        const auto& split = seq[0];
        const bool gpt2 = split.contains("pattern") && split["pattern"].is_object() &&
                          split["pattern"].value("Regex", std::string()) == gpt2_regex;
        const bool isolated = split.value("behavior", std::string()) == "Isolated" && !flag(split, "invert", false);
        byte_level(seq[1], opt);
        if (gpt2 && isolated && !opt.use_regex) {
          opt.use_regex = true;
          return;
        }
        fail("unsupported Split pre_tokenizer (only GPT-2's regex, Isolated, before ByteLevel without regex)");
      }
    }
    fail("unsupported pre_tokenizer '", t, "' (supported: ByteLevel, Sequence of ByteLevel)");
  }

  void decoder(const json& j) const {
    const std::string t = j.is_null() ? std::string("null") : type_of(j);
    if (t == "ByteLevel") return;
    if (t == "Sequence" && j.contains("decoders") && j["decoders"].is_array() && j["decoders"].size() == 1)
      return decoder(j["decoders"][0]);
    fail("unsupported decoder '", t, "' (supported: ByteLevel)");
  }

  std::vector<added_token> added_tokens(const json& j) const {
    std::vector<added_token> out;
    if (j.is_null()) return out;
    if (!j.is_array()) fail("\"added_tokens\" is not an array");
    for (const auto& a : j) {
      if (!a.is_object() || !a.contains("id") || !a.contains("content")) fail("an added token lacks id or content");
      added_token t;
      const auto& id = a["id"];
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() > 0x7FFFFFFF)
        fail("added token id ", id.dump(), " is not an integer in [0, 2^31)");
      t.id = id.get<std::int32_t>();
      t.content = a["content"].get<std::string>();
      t.special = flag(a, "special", false);
      t.normalized = flag(a, "normalized", !t.special);
      for (const char* k : {"lstrip", "rstrip", "single_word"})
        if (flag(a, k, false)) fail("added token '", t.content, "' uses ", k, ", which is not supported");
      if (t.content.empty()) fail("added token ", t.id, " is empty");
      out.push_back(std::move(t));
    }
    return out;
  }

  std::unique_ptr<bpe_model> model(const json& m, const std::vector<added_token>& added) const {
    if (!m.is_object()) fail("no \"model\" object");
    const std::string t = m.contains("type") ? type_of(m) : std::string("BPE");
    if (t != "BPE") fail("unsupported model type '", t, "' (only BPE)");
    if (!m.contains("vocab") || !m["vocab"].is_object()) fail("model has no \"vocab\" object");
    if (!m.contains("merges") || !m["merges"].is_array()) fail("model has no \"merges\" array");
    if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() != 0.0)
      fail("BPE dropout is not supported");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (m.contains(k) && !m[k].is_null() && !m[k].get<std::string>().empty()) fail(k, " is not supported");
    if (flag(m, "byte_fallback", false)) fail("byte_fallback is not supported (byte-level BPE needs none)");

    std::unordered_map<std::string, std::int32_t> ids;
    std::int32_t max_id = -1;
    for (const auto& [tok, id] : m["vocab"].items()) {
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() > 0x7FFFFFFF)
        fail("vocab entry '", tok, "' has a bad id");
      ids.emplace(tok, id.get<std::int32_t>());
      max_id = std::max(max_id, id.get<std::int32_t>());
    }
    // Ids are nearly dense: none at or beyond twice the number of tokens the file defines (model
    // and added) plus 1024, so a small file cannot ask for a table of 2^31 entries.
    const std::size_t defined = ids.size() + added.size(), limit = 2 * defined + 1024;
    if (max_id >= 0 && std::size_t(max_id) >= limit)
      fail("vocab id ", max_id, " is far beyond the ", defined, " tokens the file defines (ids must be below ",
           limit, ")");
    for (const auto& t : added)
      if (t.id >= 0 && std::size_t(t.id) >= limit)
        fail("added token '", t.content, "' has id ", t.id, ", far beyond the ", defined,
             " tokens the file defines (ids must be below ", limit, ")");
    std::vector<std::string> vocab(std::size_t(max_id + 1));
    for (const auto& [tok, id] : ids) {
      if (!vocab[std::size_t(id)].empty()) fail("vocab id ", id, " is used twice");
      vocab[std::size_t(id)] = tok;
    }
    auto lookup = [&](std::size_t r, const std::string& tok) {
      auto it = ids.find(tok);
      if (it == ids.end()) fail("merge ", r, " names unknown token '", tok, "'");
      return it->second;
    };
    std::vector<std::pair<std::int32_t, std::int32_t>> merges;
    merges.reserve(m["merges"].size());
    for (std::size_t r = 0; r < m["merges"].size(); ++r) {
      const auto& e = m["merges"][r];
      std::string a, b;
      if (e.is_string()) {
        const std::string s = e.get<std::string>();
        const auto sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          fail("merge ", r, " '", s, "' is not two tokens separated by one space");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        a = e[0].get<std::string>();
        b = e[1].get<std::string>();
      } else {
        fail("merge ", r, " is neither \"a b\" nor [a, b]");
      }
      const std::int32_t ia = lookup(r, a), ib = lookup(r, b);
      if (!ids.count(a + b)) fail("merge ", r, " gives '", a + b, "', which is not in the vocab");
      merges.emplace_back(ia, ib);
    }
    bpe_options opt;
    opt.fuse_unk = flag(m, "fuse_unk", false);
    opt.ignore_merges = flag(m, "ignore_merges", false);
    if (m.contains("unk_token") && !m["unk_token"].is_null()) {
      const std::string unk = m["unk_token"].get<std::string>();
      if (auto it = ids.find(unk); it != ids.end()) opt.unk_id = it->second;
      for (const auto& t : added)
        if (t.content == unk) opt.unk_id = t.id;
      if (!opt.unk_id) fail("unk_token '", unk, "' is not in the vocab");
    }
    return std::make_unique<bpe_model>(std::move(vocab), merges, opt);
  }

  static std::string added_content(const std::vector<added_token>& added, std::int32_t id) {
    for (const auto& t : added)
      if (t.id == id) return t.content;
    return {};
  }

  std::unique_ptr<bpe_tokenizer> load(std::string_view text) const {
    json j;
    try {
      j = json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
      fail("not valid JSON (", e.what(), ")");
    }
    if (!j.is_object()) fail("not a JSON object");
    try {
      if (!j.contains("model")) fail("no \"model\" object");
      bpe_tokenizer_options opt;
      opt.name = "hf-bpe";
      auto added = added_tokens(j.value("added_tokens", json()));
      auto mdl = model(j["model"], added);
      normalizer(j.value("normalizer", json()), opt);
      pre_tokenizer(j.value("pre_tokenizer", json()), opt);
      decoder(j.value("decoder", json()));
      // bos/eos are not in tokenizer.json; take them from the usual special token names.
      for (const auto& t : added) {
        if (!t.special) continue;
        if (t.content == "<|endoftext|>" || t.content == "</s>" || t.content == "<|end_of_text|>") opt.eos = t.id;
        if (t.content == "<s>" || t.content == "<|begin_of_text|>") opt.bos = t.id;
      }
      if (!opt.bos && opt.eos && added_content(added, *opt.eos) == "<|endoftext|>") opt.bos = opt.eos;  // GPT-2, NeoX
      return std::make_unique<bpe_tokenizer>(std::move(mdl), std::move(added), std::move(opt));
    } catch (const json::exception& e) {
      fail("unexpected JSON layout (", e.what(), ")");
    } catch (const hyena::error& e) {
      const std::string what = e.what();
      if (what.rfind("tokenizer " + source, 0) == 0) throw;
      fail(what);
    }
  }
};
}  // namespace hf_detail

// Parses tokenizer.json text; `source` names it in error messages.
inline std::unique_ptr<bpe_tokenizer> hf_tokenizer_from_json(std::string_view text, const std::string& source) {
  return hf_detail::loader{source}.load(text);
}

inline std::unique_ptr<bpe_tokenizer> load_hf_tokenizer(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HYENA_CHECK(in.good(), "tokenizer ", path, ": cannot open the file");
  std::ostringstream buf;
  buf << in.rdbuf();
  return hf_tokenizer_from_json(buf.str(), path);
}

}  // namespace hyena::io
