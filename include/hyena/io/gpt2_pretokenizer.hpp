// io/gpt2_pretokenizer.hpp: GPT-2's pre-tokenizer regex, written out by hand (no regex engine):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// The alternatives are tried in order at each position, as a backtracking engine would.
#pragma once
#include <cstddef>
#include <string_view>

#include "unicode.hpp"
#include "utf8.hpp"

namespace hyena::io {

namespace gpt2_detail {
struct unit {
  unicode::char_class cls;
  std::size_t len;
};
inline unit unit_at(std::string_view s, std::size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return {unicode::classify(b), 1};
  const auto d = utf8::decode(s, i);
  return {unicode::classify(d.cp), d.len};
}
// End of the run of `cls` units starting at i.
inline std::size_t run_end(std::string_view s, std::size_t i, unicode::char_class cls) {
  while (i < s.size()) {
    const auto u = unit_at(s, i);
    if (u.cls != cls) break;
    i += u.len;
  }
  return i;
}
}  // namespace gpt2_detail

// End (byte offset) of the regex match that starts at s[i], i < s.size(). Every position
// matches something, so the pieces tile the text.
inline std::size_t gpt2_match_end(std::string_view s, std::size_t i) {
  using unicode::char_class;
  using namespace gpt2_detail;
  const std::size_t n = s.size();
  if (s[i] == '\'' && i + 1 < n) {  // contractions, case-sensitive as in GPT-2
    const char a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n) {
      const char b = s[i + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
  }
  // " ?X+" for X in letters, numbers, other (not space): an optional leading U+0020.
  const std::size_t j = s[i] == ' ' ? i + 1 : i;
  if (j < n) {
    const auto u = unit_at(s, j);
    if (u.cls != char_class::space) return run_end(s, j + u.len, u.cls);
  }
  // \s+(?!\S): the whitespace run, less its last unit when a non-space follows; \s+ when
  // that would leave nothing (a single space unit before a non-space).
  std::size_t end = i, last = i;
  while (end < n) {
    const auto u = unit_at(s, end);
    if (u.cls != char_class::space) break;
    last = end;
    end += u.len;
  }
  if (end == n || last == i) return end;
  return last;
}

// Calls emit(std::string_view piece) for each pre-token of s, in order.
template <class Emit>
void gpt2_pretokenize(std::string_view s, Emit&& emit) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t e = gpt2_match_end(s, i);
    emit(s.substr(i, e - i));
    i = e;
  }
}

}  // namespace hyena::io
