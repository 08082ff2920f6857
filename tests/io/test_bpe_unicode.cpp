// The pieces under the byte-level BPE tokenizers: UTF-8 decoding (and its invalid-byte rule),
// character classes, NFC, GPT-2's pre-tokenizer regex, and the byte <-> unicode map.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <hyena/io/bpe_model.hpp>
#include <hyena/io/gpt2_pretokenizer.hpp>
#include <hyena/io/nfc.hpp>
#include <hyena/io/unicode.hpp>
#include <hyena/io/utf8.hpp>
#include <hyena/tensor/random.hpp>

using namespace hyena;
using io::unicode::char_class;

namespace {
std::vector<std::string> pieces(std::string_view s) {
  std::vector<std::string> out;
  io::gpt2_pretokenize(s, [&](std::string_view p) { out.emplace_back(p); });
  return out;
}
using strs = std::vector<std::string>;
}  // namespace

TEST_CASE("utf8: well-formed sequences decode, each ill-formed byte is one invalid unit") {
  const std::string s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  CHECK(io::utf8::decode(s, 0).cp == U'a');
  CHECK(io::utf8::decode(s, 1).cp == 0xE9);
  CHECK(io::utf8::decode(s, 1).len == 2);
  CHECK(io::utf8::decode(s, 3).cp == 0x20AC);
  CHECK(io::utf8::decode(s, 6).cp == 0x1F600);
  CHECK(io::utf8::decode(s, 6).len == 4);
  for (const std::string bad : {"\x80", "\xc0\xaf", "\xc3", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
                                "\xe2\x82", "\xf0\x9f\x98"}) {
    const auto d = io::utf8::decode(bad, 0);
    CHECK(d.cp == io::utf8::invalid);
    CHECK(d.len == 1);
    CHECK_FALSE(io::utf8::is_valid(bad));
  }
  CHECK(io::utf8::is_valid(s));
  std::string back;
  for (char32_t cp : {U'a', char32_t(0xE9), char32_t(0x20AC), char32_t(0x1F600)}) io::utf8::append(back, cp);
  CHECK(back == s);
}

TEST_CASE("unicode classes: letters, numbers, White_Space, others") {
  using io::unicode::classify;
  CHECK(classify(U'a') == char_class::letter);
  CHECK(classify(0x4E2D) == char_class::letter);   // 中
  CHECK(classify(0x05D0) == char_class::letter);   // א
  CHECK(classify(0x0301) == char_class::other);    // combining acute is Mn, not a letter
  CHECK(classify(U'7') == char_class::number);
  CHECK(classify(0x0663) == char_class::number);   // Arabic-Indic three
  CHECK(classify(0x2155) == char_class::number);   // ⅕ (No)
  CHECK(classify(0x00A0) == char_class::space);
  CHECK(classify(0x3000) == char_class::space);
  CHECK(classify(0x200B) == char_class::other);    // zero width space is not White_Space
  CHECK(classify(0x1C) == char_class::other);      // nor is the file separator
  CHECK(classify(0x1F600) == char_class::other);
  CHECK(classify(io::utf8::invalid) == char_class::other);
}

TEST_CASE("nfc: composition, ordering, singletons, exclusions, Hangul (values from Python's unicodedata)") {
  using io::unicode::nfc;
  CHECK(nfc("cafe\xcc\x81") == "caf\xc3\xa9");                          // e + U+0301 -> é
  CHECK(nfc("A\xcc\x8a") == "\xc3\x85");                                // A + ring -> Å
  CHECK(nfc("\xe2\x84\xab") == "\xc3\x85");                             // U+212B ANGSTROM -> U+00C5
  CHECK(nfc("q\xcc\x87\xcc\xa3") == "q\xcc\xa3\xcc\x87");               // reordered by class: 220 before 230
  CHECK(nfc("\xe1\xba\x9b\xcc\xa3") == "\xe1\xba\x9b\xcc\xa3");         // U+1E9B U+0323 stays
  CHECK(nfc("\xe0\xa5\x98") == "\xe0\xa4\x95\xe0\xa4\xbc");             // U+0958 is excluded: stays decomposed
  CHECK(nfc("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8") == "\xea\xb0\x81");  // jamo G A G -> 각
  CHECK(nfc("\xea\xb0\x80\xe1\x86\xa8") == "\xea\xb0\x81");             // 가 + jamo G -> 각
  CHECK(nfc("e\xcc\xa7\xcc\x81") == "\xc8\xa9\xcc\x81");                // cedilla (202) composes first, the acute stays
  CHECK(nfc("\xcc\x81" "a") == "\xcc\x81" "a");                         // leading non-starter
  CHECK(nfc("plain ascii") == "plain ascii");
  CHECK(nfc("e\xff\xcc\x81") == "e\xff\xcc\x81");                       // an invalid byte blocks, and survives
}

TEST_CASE("nfc: working stretch by stretch equals the whole algorithm, and is idempotent") {
  const std::vector<std::string> pool = {"a", "e", " ", "\xcc\x81", "\xcc\xa3", "\xcc\x88", "\xe1\x84\x80",
                                         "\xe1\x85\xa1", "\xe1\x86\xa8", "\xc3\xa9", "\xe2\x84\xab", "\xff",
                                         "\xd7\xb0", "\xe3\x81\x8b", "\xe3\x82\x99", "\xcd\x85"};
  rng r(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::string s;
    for (int k = 0, n = int(r.below(20)); k < n; ++k) s += pool[r.below(pool.size())];
    std::string whole;
    io::unicode::nfc_detail::nfc_full(s, whole);
    const std::string once = io::unicode::nfc(s);
    CHECK(once == whole);
    CHECK(io::unicode::nfc(once) == once);
  }
}

TEST_CASE("gpt2 pre-tokenizer: the regex's alternatives, \\s+(?!\\S) included") {
  CHECK(pieces("Hello world") == strs{"Hello", " world"});
  CHECK(pieces("it's they'll I'M") == strs{"it", "'s", " they", "'ll", " I", "'", "M"});
  CHECK(pieces("a  b") == strs{"a", " ", " b"});
  CHECK(pieces("a   \tb") == strs{"a", "   ", "\t", "b"});
  CHECK(pieces("end  ") == strs{"end", "  "});
  CHECK(pieces(" ") == strs{" "});
  CHECK(pieces("x\n\ny") == strs{"x", "\n", "\n", "y"});
  CHECK(pieces("$12.50!!") == strs{"$", "12", ".", "50", "!!"});
  CHECK(pieces(" 123 ?!") == strs{" 123", " ?!"});
  CHECK(pieces("caf\xc3\xa9\xe4\xb8\xad") == strs{"caf\xc3\xa9\xe4\xb8\xad"});
  CHECK(pieces("a\xffz") == strs{"a", "\xff", "z"});     // an invalid byte is a symbol
  CHECK(pieces("''s") == strs{"''", "s"});
  CHECK(pieces("").empty());
}

TEST_CASE("byte-level map: a bijection of bytes onto visible characters") {
  const auto& m = io::byte_to_unicode();
  CHECK(m[' '] == 0x120);  // Ġ
  CHECK(m['\n'] == 0x10A);  // Ċ
  CHECK(m['A'] == U'A');
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(char(b));
  const auto round = io::byte_level_to_bytes(io::bytes_to_byte_level(all));
  REQUIRE(round.has_value());
  CHECK(*round == all);
  CHECK_FALSE(io::byte_level_to_bytes(" ").has_value());  // a plain space is not a byte-level character
}
