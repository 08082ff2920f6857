// Byte-level BPE on small hand-made tokenizers (no data files needed): merge order against an
// independent implementation, added tokens, NFC, invalid UTF-8, the load_tokenizer factory, and
// every kind of malformed tokenizer.json.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <hyena/io/load_tokenizer.hpp>
#include <hyena/tensor/random.hpp>

using namespace hyena;
using json = nlohmann::json;

namespace {
std::string bl(std::string_view bytes) { return io::bytes_to_byte_level(bytes); }

// A tokenizer.json: the 256 byte tokens (id = byte), then one token per merge, in order.
json make_json(const std::vector<std::pair<std::string, std::string>>& merges) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[bl(std::string(1, char(b)))] = b;
  json m = json::array();
  int next = 256;
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(bl(a + b))) vocab[bl(a + b)] = next++;
    m.push_back(bl(a) + " " + bl(b));
  }
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}}};
}

std::unique_ptr<io::bpe_tokenizer> from(const json& j) { return io::hf_tokenizer_from_json(j.dump(), "test.json"); }

std::vector<std::string> tokens(const io::bpe_tokenizer& t, std::string_view text) {
  std::vector<std::string> out;
  for (auto id : t.encode(text)) out.push_back(t.decode(std::vector<std::int32_t>{id}));
  return out;
}
using strs = std::vector<std::string>;

// OpenAI's encoder.py algorithm, on byte strings: merge every occurrence of the best-ranked pair.
strs reference_bpe(const std::string& word, const std::map<std::pair<std::string, std::string>, int>& ranks) {
  strs w;
  for (char c : word) w.emplace_back(1, c);
  while (w.size() > 1) {
    int best = -1;
    std::pair<std::string, std::string> bp;
    for (std::size_t i = 0; i + 1 < w.size(); ++i)
      if (auto it = ranks.find({w[i], w[i + 1]}); it != ranks.end() && (best < 0 || it->second < best)) {
        best = it->second;
        bp = it->first;
      }
    if (best < 0) break;
    strs next;
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (i + 1 < w.size() && w[i] == bp.first && w[i + 1] == bp.second) {
        next.push_back(w[i] + w[i + 1]);
        ++i;
      } else {
        next.push_back(w[i]);
      }
    }
    w = next;
  }
  return w;
}

void check_error(const std::string& text, const std::string& needle) {
  try {
    io::hf_tokenizer_from_json(text, "bad_tok.json");
    FAIL("no error for ", needle);
  } catch (const hyena::error& e) {
    const std::string what = e.what();
    CHECK_MESSAGE(what.find("bad_tok.json") != std::string::npos, what);
    CHECK_MESSAGE(what.find(needle) != std::string::npos, what);
  }
}
}  // namespace

TEST_CASE("bpe: merges apply by rank, leftmost first among equals") {
  auto t = from(make_json({{"b", "c"}, {"a", "b"}, {"a", "a"}, {"aa", "a"}}));
  CHECK(tokens(*t, "abc") == strs{"a", "bc"});  // "b c" outranks "a b"
  CHECK(tokens(*t, "ab") == strs{"ab"});
  CHECK(tokens(*t, "aaa") == strs{"aaa"});        // "a a" at the left, then "aa a"
  CHECK(t->encode("aaaa") == t->encode("aaaa"));  // cached path gives the same
  CHECK(tokens(*t, "aaaa") == strs{"aa", "aa"});
  CHECK(tokens(*t, "ab abc") == strs{"ab", " ", "a", "bc"});
  CHECK(t->vocab_size() == 256 + 4);
  CHECK(t->encode("").empty());
}

TEST_CASE("bpe: random merges agree with OpenAI's all-occurrences algorithm") {
  rng r(7);
  const std::string alphabet = "abcd";
  std::vector<std::string> toks;
  for (char c : alphabet) toks.emplace_back(1, c);
  std::vector<std::pair<std::string, std::string>> merges;
  std::map<std::pair<std::string, std::string>, int> ranks;
  std::map<std::string, int> seen;
  while (merges.size() < 60) {
    const auto& a = toks[r.below(toks.size())];
    const auto& b = toks[r.below(toks.size())];
    if (ranks.count({a, b}) || a.size() + b.size() > 8) continue;
    ranks[{a, b}] = int(merges.size());
    merges.push_back({a, b});
    if (!seen[a + b]++) toks.push_back(a + b);
  }
  auto t = from(make_json(merges));
  for (int trial = 0; trial < 300; ++trial) {
    std::string word(1 + r.below(40), 'a');
    for (auto& c : word) c = alphabet[r.below(alphabet.size())];
    CHECK_MESSAGE(tokens(*t, word) == reference_bpe(word, ranks), word);
  }
}

TEST_CASE("bpe: added tokens split first, longest first; normalized ones after NFC") {
  auto j = make_json({{"a", "b"}});
  j["normalizer"] = {{"type", "NFC"}};
  j["added_tokens"] = json::array({
      {{"id", 300}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
      {{"id", 301}, {"content", "ab"}, {"special", false}, {"normalized", false}},
      {{"id", 302}, {"content", "abab"}, {"special", false}, {"normalized", false}},
      {{"id", 303}, {"content", "\xc3\xa9"}, {"special", false}, {"normalized", true}},
  });
  auto t = from(j);
  CHECK(t->vocab_size() == 304);
  CHECK(t->encode("x<s>y") == std::vector<std::int32_t>{'x', 300, 'y'});
  CHECK(t->encode("ababab") == std::vector<std::int32_t>{302, 301});
  CHECK(t->encode("e\xcc\x81") == std::vector<std::int32_t>{303});  // NFC gives é, then the added token
  // HF's ByteLevel decoder maps an added token's characters through the byte map when it can: "é"
  // (U+00E9) becomes the byte 0xE9 (HF then shows U+FFFD; we return the raw bytes).
  CHECK(t->decode(t->encode("x<s>e\xcc\x81")) == "x<s>\xe9");
  CHECK(t->byte_length(t->encode("x<s>y")) == 2);  // special tokens count no bytes
  CHECK(t->eos_id() == std::nullopt);
}

TEST_CASE("bpe: prefix space and use_regex=false") {
  auto j = make_json({{" ", "a"}});
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", false}};
  auto t = from(j);
  CHECK(tokens(*t, "aa a") == strs{" a", "a", " a"});
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "ByteLevel"}, {"add_prefix_space", false}}})}};
  CHECK(tokens(*from(j), "a a") == strs{"a", " a"});
}

TEST_CASE("bpe: invalid UTF-8 keeps every byte (decode(encode(s)) == s for any bytes)") {
  auto j = make_json({{"a", "b"}, {"\xff", "\xfe"}});
  j["normalizer"] = {{"type", "NFC"}};
  auto t = from(j);
  CHECK(tokens(*t, "ab\xff\xfe" "ab") == strs{"ab", "\xff\xfe", "ab"});
  j["normalizer"] = nullptr;
  auto raw = from(j);
  rng r(3);
  for (int trial = 0; trial < 50; ++trial) {
    std::string s(r.below(200), '\0');
    for (auto& c : s) c = char(r.below(256));
    CHECK(raw->decode(raw->encode(s)) == s);
    CHECK(t->decode(t->encode(s)) == io::unicode::nfc(s));  // with NFC: the normalised bytes
  }
}

TEST_CASE("bpe: malformed or unsupported tokenizer.json throws one error naming the file and the problem") {
  check_error("{ not json", "not valid JSON");
  check_error("[1, 2]", "not a JSON object");
  check_error(R"({"version": "1.0"})", "no \"model\"");
  auto j = make_json({{"a", "b"}});
  j["model"]["merges"].push_back(bl("a") + " " + "\xe2\x98\x83");
  check_error(j.dump(), "merge 1 names unknown token");
  j = make_json({});
  j["model"]["type"] = "WordPiece";
  check_error(j.dump(), "unsupported model type 'WordPiece'");
  j = make_json({});
  j["model"]["merges"] = json::array({"a"});
  check_error(j.dump(), "not two tokens");
  j = make_json({});
  j["normalizer"] = {{"type", "Lowercase"}};
  check_error(j.dump(), "unsupported normalizer 'Lowercase'");
  j = make_json({});
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  check_error(j.dump(), "unsupported pre_tokenizer 'Whitespace'");
  j = make_json({});
  j["decoder"] = {{"type", "WordPiece"}};
  check_error(j.dump(), "unsupported decoder");
  j = make_json({});
  j["added_tokens"] = json::array({{{"id", 300}, {"content", "<m>"}, {"lstrip", true}}});
  check_error(j.dump(), "lstrip");
  j = make_json({});
  j["model"]["dropout"] = 0.1;
  check_error(j.dump(), "dropout");
  j = make_json({});
  j["model"]["vocab"] = 3;
  check_error(j.dump(), "no \"vocab\"");
  CHECK_THROWS_AS(io::load_hf_tokenizer("/nonexistent/tokenizer.json"), hyena::error);
  // [a, b] pairs are accepted as merges too.
  j = make_json({});
  j["model"]["vocab"][bl("ab")] = 256;
  j["model"]["merges"] = json::array({json::array({bl("a"), bl("b")})});
  CHECK(from(j)->encode("ab") == std::vector<std::int32_t>{256});
}

TEST_CASE("load_tokenizer: byte, a tokenizer.json, a folder with encoder.json + vocab.bpe") {
  namespace fs = std::filesystem;
  CHECK(io::load_tokenizer("byte")->name() == "byte");
  const fs::path dir = fs::temp_directory_path() / ("hyena_bpe_test_" + std::to_string(::getpid()));
  fs::create_directories(dir / "gpt2");
  std::ofstream(dir / "tokenizer.json") << make_json({{"a", "b"}}).dump();
  json enc = json::object();
  for (int b = 0; b < 256; ++b) enc[bl(std::string(1, char(b)))] = b;
  enc[bl("ab")] = 256;
  enc["<|endoftext|>"] = 257;
  std::ofstream(dir / "gpt2" / "encoder.json") << enc.dump();
  std::ofstream(dir / "gpt2" / "vocab.bpe") << "#version: 0.2\n" << bl("a") << " " << bl("b") << "\n";
  auto hf = io::load_tokenizer((dir / "tokenizer.json").string());
  CHECK(hf->encode("ab") == std::vector<std::int32_t>{256});
  auto g = io::load_tokenizer((dir / "gpt2").string() + "/");
  CHECK(g->name() == "gpt2");
  CHECK(g->encode("ab<|endoftext|>") == std::vector<std::int32_t>{256, 257});
  CHECK(g->eos_id() == 257);
  CHECK(io::load_tokenizer(dir.string())->name() == "hf-bpe");  // a folder with tokenizer.json
  std::ofstream(dir / "gpt2" / "vocab.bpe") << "#version: 0.2\n" << bl("a") << " zz\n";
  CHECK_THROWS_AS(io::load_tokenizer((dir / "gpt2").string()), hyena::error);
  CHECK_THROWS_AS(io::load_tokenizer((dir / "missing").string()), hyena::error);
  fs::remove_all(dir);
}
