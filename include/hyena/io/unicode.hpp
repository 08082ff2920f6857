// io/unicode.hpp: the character classes the GPT-2 pre-tokenizer regex needs (\p{L}, \p{N}, \s).
#pragma once
#include <algorithm>
#include <cstdint>
#include <iterator>

#include "unicode_tables.hpp"
#include "utf8.hpp"

namespace hyena::io::unicode {

enum class char_class : std::uint8_t { other, letter, number, space };

namespace detail {
template <std::size_t N>
inline bool in_ranges(const unicode_data::cp_range (&table)[N], char32_t cp) {
  // First range whose end is >= cp, then whether it starts at or before cp.
  const auto* it = std::lower_bound(std::begin(table), std::end(table), cp,
                                    [](const unicode_data::cp_range& r, char32_t c) { return r.last < c; });
  return it != std::end(table) && it->first <= cp;
}

// ASCII answers come from a table: most text is ASCII and this is the hot path.
struct ascii_classes {
  char_class c[128]{};
  constexpr ascii_classes() {
    for (int i = 0; i < 128; ++i) {
      if ((i >= 'a' && i <= 'z') || (i >= 'A' && i <= 'Z')) c[i] = char_class::letter;
      else if (i >= '0' && i <= '9') c[i] = char_class::number;
      else if (i == ' ' || (i >= 0x09 && i <= 0x0D)) c[i] = char_class::space;
    }
  }
};
inline constexpr ascii_classes ascii{};
}  // namespace detail

// Oniguruma's \s in Unicode mode is the White_Space property (checked against `tokenizers`).
inline bool is_white_space(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

inline char_class classify(char32_t cp) {
  if (cp < 128) return detail::ascii.c[cp];
  if (cp == utf8::invalid) return char_class::other;  // invalid bytes act as symbols
  if (is_white_space(cp)) return char_class::space;
  if (detail::in_ranges(unicode_data::letters, cp)) return char_class::letter;
  if (detail::in_ranges(unicode_data::numbers, cp)) return char_class::number;
  return char_class::other;
}

}  // namespace hyena::io::unicode
