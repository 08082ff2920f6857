// io/llama2c_tokenizer.hpp: the SentencePiece BPE vocabularies of llama2.c ("tokenizer.bin").
//
// File layout (little-endian): int32 max_token_length, then per token
// {float32 score, int32 len, len bytes}; the token count is not stored (it is the model's
// vocab). Conventions of llama2.c / Llama: id 0 <unk>, 1 BOS, 2 EOS, pieces "<0xXX>" are
// byte fallbacks, and "▁" is already replaced by a space.
//
// encode follows SentencePiece (and llama2.c's encode): a dummy-prefix space before
// non-empty text, one symbol per UTF-8 code point (its bytes as byte-fallback tokens when
// the code point is not a piece), then repeatedly merge the adjacent pair whose
// concatenation is a piece with the highest score (leftmost on ties). A heap over a linked
// list does this in O(n log n), so whole corpora encode quickly.
// decode drops BOS/EOS, maps byte pieces back to bytes, and strips the leading space of the
// first piece and of a piece right after BOS (the dummy prefix), so decode(encode(t)) == t.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "mapped_file.hpp"
#include "tokenizer.hpp"

namespace hyena::io {

class llama2c_tokenizer final : public tokenizer {
 public:
  static constexpr std::int32_t unk = 0, bos = 1, eos = 2;

  // Reads `path`; vocab_size > 0 requires exactly that many tokens (the model's vocab),
  // 0 reads tokens up to the end of the file.
  explicit llama2c_tokenizer(const std::string& path, index_t vocab_size = 0) {
    mapped_file f(path);
    load(f, vocab_size);
  }

  std::vector<std::int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const std::int32_t> ids) const override;
  index_t vocab_size() const override { return index_t(pieces_.size()); }
  std::string name() const override { return "llama2c"; }
  std::optional<std::int32_t> bos_id() const override { return bos; }
  std::optional<std::int32_t> eos_id() const override { return eos; }

  const std::string& piece(std::int32_t id) const {
    check_id(id);
    return pieces_[std::size_t(id)];
  }
  float score(std::int32_t id) const {
    check_id(id);
    return scores_[std::size_t(id)];
  }
  index_t max_token_length() const { return max_len_; }
  // The id of a piece's exact text (byte pieces and BOS/EOS/unk excluded), or -1.
  std::int32_t lookup(std::string_view s) const {
    auto it = ids_.find(std::string(s));
    return it == ids_.end() ? -1 : it->second;
  }
  // The byte-fallback id of byte b, or unk when the vocabulary has none.
  std::int32_t byte_id(unsigned char b) const { return byte_ids_[b]; }

 private:
  void load(const mapped_file& f, index_t want) {
    const std::string& path = f.path();
    auto fail = [&](const auto&... parts) { HYENA_FAIL("llama2.c tokenizer ", path, ": ", parts...); };
    const auto* p = reinterpret_cast<const unsigned char*>(f.data());
    const std::size_t n = f.size();
    if (want < 0) fail("negative vocab size ", want);
    if (n < 4) fail("cut short: ", n, " bytes, no room for the 4-byte max_token_length");
    std::int32_t max_len;
    std::memcpy(&max_len, p, 4);
    if (max_len <= 0) fail("max_token_length must be positive, got ", max_len);
    max_len_ = max_len;
    std::size_t at = 4;
    while (want > 0 ? index_t(pieces_.size()) < want : at < n) {
      const index_t i = index_t(pieces_.size());
      if (n - at < 8) fail("cut short in token ", i, ": ", n - at, " bytes left, a record needs 8 + its length");
      float score;
      std::int32_t len;
      std::memcpy(&score, p + at, 4);
      std::memcpy(&len, p + at + 4, 4);
      at += 8;
      if (len < 0) fail("token ", i, " has negative length ", len);
      if (std::size_t(len) > n - at)
        fail("cut short in token ", i, ": length ", len, " but only ", n - at, " bytes left");
      pieces_.emplace_back(reinterpret_cast<const char*>(p + at), std::size_t(len));
      scores_.push_back(score);
      at += std::size_t(len);
    }
    if (at != n) fail("trailing data: ", n - at, " bytes after the ", pieces_.size(), " tokens");
    if (pieces_.size() < 3) fail("only ", pieces_.size(), " tokens; need at least <unk>, BOS and EOS");

    byte_ids_.fill(unk);
    byte_of_.assign(pieces_.size(), -1);
    for (std::size_t id = 0; id < pieces_.size(); ++id) {
      const std::string& s = pieces_[id];
      if (int b = byte_piece(s); b >= 0) {
        if (byte_ids_[std::size_t(b)] == unk) byte_ids_[std::size_t(b)] = std::int32_t(id);
        byte_of_[id] = static_cast<std::int16_t>(b);
      } else if (id > 2 && !s.empty()) {
        ids_.emplace(s, std::int32_t(id));  // duplicates: the first id wins
      }
    }
  }

  // b for a piece spelled exactly "<0xHH>" (hex, either case), else -1.
  static int byte_piece(const std::string& s) {
    if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>') return -1;
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = hex(s[3]), lo = hex(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<std::int16_t> byte_of_;  // the byte of a byte piece, else -1
  std::unordered_map<std::string, std::int32_t> ids_;
  std::array<std::int32_t, 256> byte_ids_{};
  index_t max_len_ = 0;
};

inline std::vector<std::int32_t> llama2c_tokenizer::encode(std::string_view text) const {
  std::vector<std::int32_t> out;
  if (text.empty()) return out;
  // Symbols are spans of `work` (the dummy-prefix space, then the text) in a linked list.
  std::string work;
  work.reserve(text.size() + 1);
  work += ' ';
  work += text;
  struct symbol {
    std::size_t begin, len;
    std::int32_t id;
    index_t prev, next;
    bool mergeable;  // byte-fallback pieces never merge
  };
  std::vector<symbol> sym;
  sym.reserve(work.size());
  auto push = [&](std::size_t b, std::size_t l, std::int32_t id, bool m) {
    index_t i = index_t(sym.size());
    sym.push_back({b, l, id, i - 1, i + 1, m});
  };
  // One symbol per UTF-8 code point: a lead byte and up to 3 continuation bytes (as llama2.c
  // groups them, so malformed input still round-trips through byte fallback). The dummy-prefix
  // space is always a symbol of its own: llama2.c would glue stray continuation bytes at the start
  // of the text onto it, and the byte-fallback <0x20> that results is not stripped by decode
  // (found by fuzz_tokenizer_roundtrip: "\xa4\x9a..." came back with a leading space).
  for (std::size_t i = 0; i < work.size();) {
    if (i == 0) {
      const std::int32_t id = lookup(std::string_view(work).substr(0, 1));
      push(0, 1, id >= 0 ? id : byte_id(' '), id >= 0);
      i = 1;
      continue;
    }
    std::size_t j = i + 1;
    while (j < work.size() && j - i < 4 && (static_cast<unsigned char>(work[j]) & 0xC0) == 0x80) ++j;
    if (std::int32_t id = lookup(std::string_view(work).substr(i, j - i)); id >= 0) {
      push(i, j - i, id, true);
    } else {
      for (std::size_t k = i; k < j; ++k) push(k, 1, byte_id(static_cast<unsigned char>(work[k])), false);
    }
    i = j;
  }
  const index_t n = index_t(sym.size());
  sym.back().next = -1;

  // Candidate merges; stale ones (a side already merged away or changed) are skipped.
  struct candidate {
    float score;
    index_t left, right;
    std::size_t len;  // combined length when pushed
    std::int32_t id;
  };
  auto worse = [](const candidate& a, const candidate& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<candidate, std::vector<candidate>, decltype(worse)> heap(worse);
  auto consider = [&](index_t l) {
    if (l < 0) return;
    index_t r = sym[std::size_t(l)].next;
    if (r < 0) return;
    const symbol &a = sym[std::size_t(l)], &b = sym[std::size_t(r)];
    if (!a.mergeable || !b.mergeable || index_t(a.len + b.len) > max_len_) return;
    std::int32_t id = lookup(std::string_view(work).substr(a.begin, a.len + b.len));
    if (id >= 0) heap.push({scores_[std::size_t(id)], l, r, a.len + b.len, id});
  };
  for (index_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    candidate c = heap.top();
    heap.pop();
    symbol &a = sym[std::size_t(c.left)], &b = sym[std::size_t(c.right)];
    if (a.len == 0 || b.len == 0 || a.next != c.right || a.len + b.len != c.len) continue;
    a.len += b.len;
    a.id = c.id;
    b.len = 0;  // dead
    a.next = b.next;
    if (b.next >= 0) sym[std::size_t(b.next)].prev = c.left;
    consider(a.prev);
    consider(c.left);
  }
  for (index_t i = 0; i >= 0; i = sym[std::size_t(i)].next) out.push_back(sym[std::size_t(i)].id);
  return out;
}

inline std::string llama2c_tokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int32_t id = ids[i];
    check_id(id);
    if (id == bos || id == eos) continue;
    if (int b = byte_of_[std::size_t(id)]; b >= 0) {
      out.push_back(static_cast<char>(static_cast<unsigned char>(b)));
      continue;
    }
    std::string_view s = pieces_[std::size_t(id)];
    if ((i == 0 || ids[i - 1] == bos) && !s.empty() && s[0] == ' ') s.remove_prefix(1);
    out += s;
  }
  return out;
}

}  // namespace hyena::io
