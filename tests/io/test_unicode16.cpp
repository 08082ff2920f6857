// The character tables are Unicode 16.0 (scripts/gen_unicode_tables.py from unicodedata2 16.0.0),
// the version Hugging Face tokenizers 0.23 classifies by: letters and digits new in 16.0 are
// letters and numbers for the GPT-2 pre-tokenizer, and the GPT-NeoX tokenizer gives current
// `tokenizers`' ids on ../shared/cases/tokenizer/unicode16.json.
#include <doctest/doctest.h>

#include <fstream>
#include <hyena/io/hf_tokenizer.hpp>
#include <hyena/io/unicode.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "support/cases_dir.hpp"

using namespace hyena;
using io::unicode::char_class;

TEST_CASE("unicode tables: version 16.0.0, with the source recorded") {
  CHECK(std::string(io::unicode_data::unicode_version) == "16.0.0");
  CHECK(std::string(io::unicode_data::unicode_source).find("unicodedata2 16.0.0") != std::string::npos);
}

TEST_CASE("unicode tables: characters first assigned in 16.0 are classified") {
  using io::unicode::classify;
  CHECK(classify(0xA7CB) == char_class::letter);   // LATIN CAPITAL LETTER RAMS HORN (Lu)
  CHECK(classify(0x1C89) == char_class::letter);   // CYRILLIC CAPITAL LETTER TJE (Lu)
  CHECK(classify(0x10D4A) == char_class::letter);  // GARAY VOWEL SIGN A (Lo)
  CHECK(classify(0x16D70) == char_class::number);  // KIRAT RAI DIGIT ZERO (Nd)
  CHECK(classify(0x1CCF0) == char_class::number);  // OUTLINED DIGIT ZERO (Nd)
  CHECK(classify(0x323AF) == char_class::letter);  // CJK UNIFIED IDEOGRAPH-323AF (Lo, Extension H grew in 16.0)
  // Unassigned in 16.0, and characters that were letters before, keep their class.
  CHECK(classify(0x2FFFF) == char_class::other);
  CHECK(classify(0x00E9) == char_class::letter);
  CHECK(classify(0x0660) == char_class::number);
}

TEST_CASE("unicode 16: GPT-NeoX tokenizer ids equal current tokenizers' on the shared case") {
  const std::string dir = testing::cases_dir("tokenizer");
  if (dir.empty()) return;
  std::ifstream in(dir + "/unicode16.json");
  REQUIRE(in.good());
  const auto j = nlohmann::json::parse(in);
  const auto tok_path = testing::shared_data_dir() / ".." / "data" / j.at("tokenizer").get<std::string>();
  auto tok = io::load_hf_tokenizer(tok_path.lexically_normal().string());
  REQUIRE(j.at("cases").size() >= 1);
  for (const auto& c : j.at("cases")) {
    const std::string text = c.at("text");
    const auto want = c.at("ids").get<std::vector<std::int32_t>>();
    CAPTURE(text);
    CHECK(tok->encode(text) == want);
    CHECK(tok->decode(want) == text);
  }
}
