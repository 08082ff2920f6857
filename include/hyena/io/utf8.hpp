// io/utf8.hpp: UTF-8 decoding and encoding for the tokenizers.
//
// Invalid UTF-8 (Python's `tokenizers` only takes valid str, so there is no reference):
// our choice is to operate on bytes, never to lose any. Each byte that does not start a
// well-formed sequence (stray continuation bytes, truncated or overlong sequences, surrogates,
// code points past U+10FFFF) decodes as one "invalid byte" unit of length 1. The
// normaliser leaves such units alone, the pre-tokenizer treats them like symbols (neither
// letter, number nor space) and byte-level BPE encodes their raw byte, so decode(encode(s)) == s
// for every byte string s, and valid input tokenizes exactly as Hugging Face does.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hyena::io::utf8 {

// Marks an invalid byte: code points never go past 0x10FFFF.
inline constexpr char32_t invalid = 0xFFFFFFFFu;

struct decoded {
  char32_t cp;      // the code point, or `invalid`
  std::uint32_t len;  // bytes consumed, 1..4 (1 for an invalid byte)
};

// Decodes the unit at s[i] (i < s.size()), following the well-formed table of Unicode 3.9.
inline decoded decode(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  auto cont = [&](std::size_t k, unsigned lo, unsigned hi) {
    if (i + k >= s.size()) return false;
    const auto b = static_cast<unsigned char>(s[i + k]);
    return b >= lo && b <= hi;
  };
  auto tail = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (cont(1, 0x80, 0xBF)) return {(char32_t(b0 & 0x1F) << 6) | tail(1), 2};
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;  // no overlongs, no surrogates
    if (cont(1, lo, hi) && cont(2, 0x80, 0xBF)) return {(char32_t(b0 & 0x0F) << 12) | (tail(1) << 6) | tail(2), 3};
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;  // no overlongs, <= U+10FFFF
    if (cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF))
      return {(char32_t(b0 & 0x07) << 18) | (tail(1) << 12) | (tail(2) << 6) | tail(3), 4};
  }
  return {invalid, 1};
}

// Appends the UTF-8 form of a valid code point.
inline void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

inline bool is_valid(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto d = decode(s, i);
    if (d.cp == invalid) return false;
    i += d.len;
  }
  return true;
}

}  // namespace hyena::io::utf8
