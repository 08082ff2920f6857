// io/nfc.hpp: Unicode Normalization Form C (canonical decomposition, canonical ordering,
// canonical composition; Hangul by arithmetic), as the NFC normalizer of tokenizer.json needs.
// Tables: unicode_tables.hpp (see there for the Unicode version). Invalid UTF-8 bytes pass
// through unchanged and block composition, like any starter that composes with nothing.
#pragma once
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "unicode_tables.hpp"
#include "utf8.hpp"

namespace hyena::io::unicode {

namespace nfc_detail {
// Units: a code point, or 0x80000000 | byte for an invalid byte (no class, no mappings).
inline constexpr std::uint32_t raw_byte_flag = 0x80000000u;
inline constexpr std::uint32_t s_base = 0xAC00, l_base = 0x1100, v_base = 0x1161, t_base = 0x11A7;
inline constexpr std::uint32_t l_count = 19, v_count = 21, t_count = 28, n_count = v_count * t_count,
                               s_count = l_count * n_count;

inline std::uint8_t combining_class(std::uint32_t cp) {
  if (cp < 0x300 || (cp & raw_byte_flag)) return 0;
  const auto& t = unicode_data::combining_classes;
  const auto* it = std::lower_bound(std::begin(t), std::end(t), cp,
                                    [](const unicode_data::ccc_range& r, std::uint32_t c) { return r.last < c; });
  return (it != std::end(t) && it->first <= cp) ? it->cls : 0;
}

inline void decompose(std::uint32_t cp, std::vector<std::uint32_t>& out) {
  if (cp >= s_base && cp < s_base + s_count) {  // Hangul syllable -> L V (T)
    const std::uint32_t s = cp - s_base;
    out.push_back(l_base + s / n_count);
    out.push_back(v_base + (s % n_count) / t_count);
    if (s % t_count) out.push_back(t_base + s % t_count);
    return;
  }
  if (cp >= 0xC0 && !(cp & raw_byte_flag)) {
    const auto& t = unicode_data::decompositions;
    const auto* it = std::lower_bound(std::begin(t), std::end(t), cp,
                                      [](const unicode_data::decomposition& d, std::uint32_t c) { return d.cp < c; });
    if (it != std::end(t) && it->cp == cp) {
      decompose(it->first, out);  // mappings can nest (e.g. U+1E69)
      if (it->second) decompose(it->second, out);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of a pair, or 0 when there is none.
inline std::uint32_t compose(std::uint32_t a, std::uint32_t b) {
  if (a >= l_base && a < l_base + l_count && b >= v_base && b < v_base + v_count)
    return s_base + ((a - l_base) * v_count + (b - v_base)) * t_count;
  if (a >= s_base && a < s_base + s_count && (a - s_base) % t_count == 0 && b > t_base && b < t_base + t_count)
    return a + (b - t_base);
  const auto& t = unicode_data::compositions;
  const auto* it = std::lower_bound(std::begin(t), std::end(t), std::pair{a, b},
                                    [](const unicode_data::composition& c, std::pair<std::uint32_t, std::uint32_t> k) {
                                      return c.first < k.first || (c.first == k.first && c.second < k.second);
                                    });
  return (it != std::end(t) && it->first == a && it->second == b) ? it->composed : 0;
}
}  // namespace nfc_detail

// True when NFC cannot change s: every code point is below U+0300 (no such character has a
// decomposition or composes with another; checked with Python's unicodedata). Lead bytes below
// 0xCC encode exactly those.
inline bool nfc_trivial(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0xCC) return false;
  return true;
}

namespace nfc_detail {
// The whole algorithm, appended to out.
inline void nfc_full(std::string_view s, std::string& out) {
  thread_local std::vector<std::uint32_t> u;
  u.clear();
  u.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto d = utf8::decode(s, i);
    decompose(d.cp == utf8::invalid ? (raw_byte_flag | static_cast<unsigned char>(s[i])) : d.cp, u);
    i += d.len;
  }
  // Canonical ordering: a stable sort of each run of non-starters by combining class.
  for (std::size_t i = 0; i < u.size();) {
    if (combining_class(u[i]) == 0) { ++i; continue; }
    std::size_t j = i;
    while (j < u.size() && combining_class(u[j]) != 0) ++j;
    std::stable_sort(u.begin() + i, u.begin() + j,
                     [](std::uint32_t a, std::uint32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition: a character joins the last starter unless something between blocks it.
  std::size_t out_len = 0;
  std::size_t starter = 0;
  bool have_starter = false;
  int last_class = -1;
  for (std::size_t i = 0; i < u.size(); ++i) {
    const std::uint32_t c = u[i];
    const int cls = combining_class(c);
    if (have_starter && (last_class < cls || (last_class == 0 && out_len == starter + 1))) {
      if (const std::uint32_t comp = compose(u[starter], c)) {
        u[starter] = comp;
        continue;
      }
    }
    if (cls == 0) {
      starter = out_len;
      have_starter = true;
    }
    last_class = cls;
    u[out_len++] = c;
  }
  for (std::size_t i = 0; i < out_len; ++i) {
    if (u[i] & raw_byte_flag) out.push_back(static_cast<char>(u[i] & 0xFF));
    else utf8::append(out, u[i]);
  }
}
}  // namespace nfc_detail

// NFC of s (UTF-8), invalid bytes kept as they are. An ASCII character never decomposes, is a
// starter, and is never the second half of a composition, so NFC works independently on each side
// of the point just before it: only the stretches around code points >= U+0300 go through the full
// algorithm, each from the ASCII character before it to the next ASCII character.
inline std::string nfc(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t k = i;
    while (k < s.size() && static_cast<unsigned char>(s[k]) < 0xCC) ++k;
    if (k == s.size()) break;
    std::size_t start = k, end = k;
    while (start > i && static_cast<unsigned char>(s[start - 1]) >= 0x80) --start;
    if (start > i) --start;  // the ASCII starter that may take the marks that follow
    while (end < s.size() && static_cast<unsigned char>(s[end]) >= 0x80) ++end;
    out.append(s.substr(i, start - i));
    nfc_detail::nfc_full(s.substr(start, end - start), out);
    i = end;
  }
  out.append(s.substr(i));
  return out;
}

}  // namespace hyena::io::unicode
