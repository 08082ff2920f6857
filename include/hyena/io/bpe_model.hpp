// io/bpe_model.hpp: the byte-level BPE model: GPT-2's byte <-> unicode map, merges applied by
// rank, and a per-word cache. Words are raw bytes; the model works on token ids throughout.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "utf8.hpp"

namespace hyena::io {

// GPT-2's reversible byte -> code point map: printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100.. in byte order, so every byte is a visible, non-space character.
inline const std::array<char32_t, 256>& byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[b] = printable ? char32_t(b) : next++;
    }
    return t;
  }();
  return table;
}

// The bytes a byte-level token string stands for; nullopt when a character is outside the map
// (Hugging Face's ByteLevel decoder then keeps the token's own UTF-8).
inline std::optional<std::string> byte_level_to_bytes(std::string_view token) {
  static const std::array<std::int16_t, 324> inverse = [] {  // code point -> byte, -1 where none
    std::array<std::int16_t, 324> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_to_unicode()[b]] = std::int16_t(b);
    return t;
  }();
  std::string out;
  out.reserve(token.size());
  for (std::size_t i = 0; i < token.size();) {
    const auto d = utf8::decode(token, i);
    i += d.len;
    if (d.cp >= inverse.size() || inverse[d.cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(inverse[d.cp]));
  }
  return out;
}

inline std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) utf8::append(out, byte_to_unicode()[static_cast<unsigned char>(c)]);
  return out;
}

struct bpe_options {
  std::optional<std::int32_t> unk_id;  // stands for bytes with no token; without it they are dropped
  bool fuse_unk = false;               // consecutive unknowns give one unk
  bool ignore_merges = false;          // a word that is itself in the vocabulary is one token
};

class bpe_model {
 public:
  // vocab[id] = the byte-level token string (empty for ids the model leaves unused);
  // merges in rank order, as (left id, right id); the merged token must be in the vocabulary.
  bpe_model(std::vector<std::string> vocab, const std::vector<std::pair<std::int32_t, std::int32_t>>& merges,
            bpe_options opt = {})
      : vocab_(std::move(vocab)), opt_(opt) {
    for (std::int32_t id = 0; id < std::int32_t(vocab_.size()); ++id)
      if (!vocab_[id].empty()) ids_.emplace(vocab_[id], id);
    byte_ids_.fill(-1);
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      utf8::append(ch, byte_to_unicode()[b]);
      if (auto it = ids_.find(ch); it != ids_.end()) byte_ids_[b] = it->second;
    }
    merges_.reserve(merges.size() * 2);
    for (std::size_t r = 0; r < merges.size(); ++r) {
      const auto [a, b] = merges[r];
      HYENA_CHECK(a >= 0 && b >= 0 && a < std::int32_t(vocab_.size()) && b < std::int32_t(vocab_.size()),
                  "bpe: merge ", r, " names an id outside the vocabulary");
      auto it = ids_.find(vocab_[a] + vocab_[b]);
      HYENA_CHECK(it != ids_.end(), "bpe: merge ", r, " ('", vocab_[a], "' '", vocab_[b],
                  "') gives a token missing from the vocabulary");
      merges_.insert_or_assign(key(a, b), merge_info{std::int32_t(r), it->second});  // a repeat: the last wins, as in HF
    }
  }

  std::size_t size() const { return vocab_.size(); }
  const std::string& token(std::int32_t id) const { return vocab_[id]; }
  // Whether byte b has a token of its own (its byte-level character is in the vocabulary).
  bool has_byte(unsigned char b) const { return byte_ids_[b] >= 0; }
  const bpe_options& options() const { return opt_; }
  std::optional<std::int32_t> id(std::string_view token) const {
    auto it = ids_.find(std::string(token));
    return it == ids_.end() ? std::nullopt : std::optional<std::int32_t>(it->second);
  }

  // Appends the ids of one pre-token (raw bytes) to out.
  void encode_word(std::string_view word, std::vector<std::int32_t>& out) const {
    {
      std::lock_guard lock(cache_mutex_);
      if (auto it = cache_.find(word); it != cache_.end()) {
        out.insert(out.end(), cache_ids_.begin() + it->second.first,
                   cache_ids_.begin() + it->second.first + it->second.second);
        return;
      }
    }
    const std::size_t start = out.size();
    merge_word(word, out);
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() < cache_capacity) {
      cache_.emplace(std::string(word), std::pair<std::uint32_t, std::uint32_t>(
                                            std::uint32_t(cache_ids_.size()), std::uint32_t(out.size() - start)));
      cache_ids_.insert(cache_ids_.end(), out.begin() + start, out.end());
    }
  }

  static constexpr std::size_t cache_capacity = 1u << 18;

 private:
  struct merge_info {
    std::int32_t rank, id;
  };
  struct symbol {
    std::int32_t id, prev, next;  // prev/next: neighbours in the word, -1 at the ends
  };
  struct candidate {
    std::int32_t rank, pos;  // the pair (pos, next of pos)
    bool operator>(const candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  static std::uint64_t key(std::int32_t a, std::int32_t b) {
    return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
  }
  const merge_info* find_merge(std::int32_t a, std::int32_t b) const {
    auto it = merges_.find(key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  // Lowest rank first, leftmost among equal ranks (as Hugging Face's queue does), with a heap
  // of candidate pairs that are checked again when popped: O(n log n) even for long words.
  void merge_word(std::string_view word, std::vector<std::int32_t>& out) const {
    if (opt_.ignore_merges) {
      if (auto it = ids_.find(bytes_to_byte_level(word)); it != ids_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    thread_local std::vector<symbol> sym;
    thread_local std::vector<candidate> heap;
    sym.clear();
    heap.clear();
    bool last_unk = false;
    for (char c : word) {
      const std::int32_t id = byte_ids_[static_cast<unsigned char>(c)];
      if (id < 0) {
        if (opt_.unk_id && !(opt_.fuse_unk && last_unk)) sym.push_back({*opt_.unk_id, 0, 0});
        last_unk = true;
        continue;
      }
      last_unk = false;
      sym.push_back({id, 0, 0});
    }
    const auto n = std::int32_t(sym.size());
    for (std::int32_t i = 0; i < n; ++i) {
      sym[i].prev = i - 1;
      sym[i].next = i + 1 < n ? i + 1 : -1;
    }
    const auto push = [&](std::int32_t pos) {
      if (pos < 0 || sym[pos].next < 0) return;
      if (const merge_info* m = find_merge(sym[pos].id, sym[sym[pos].next].id)) {
        heap.push_back({m->rank, pos});
        std::push_heap(heap.begin(), heap.end(), std::greater<>{});
      }
    };
    for (std::int32_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
      const candidate c = heap.back();
      heap.pop_back();
      symbol& left = sym[c.pos];
      if (left.id < 0 || left.next < 0) continue;  // merged away since it was queued
      const merge_info* m = find_merge(left.id, sym[left.next].id);
      if (!m || m->rank != c.rank) continue;  // the pair changed since it was queued
      symbol& right = sym[left.next];
      left.id = m->id;
      right.id = -1;
      left.next = right.next;
      if (right.next >= 0) sym[right.next].prev = c.pos;
      push(left.prev);
      push(c.pos);
    }
    for (std::int32_t i = 0; i >= 0 && i < n; i = sym[i].next) out.push_back(sym[i].id);
  }

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, std::int32_t> ids_;
  std::array<std::int32_t, 256> byte_ids_{};
  std::unordered_map<std::uint64_t, merge_info> merges_;
  bpe_options opt_;
  // The cache maps a word to a slice of cache_ids_; it stops growing at cache_capacity words.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::pair<std::uint32_t, std::uint32_t>, string_hash, std::equal_to<>>
      cache_;
  mutable std::vector<std::int32_t> cache_ids_;
};

}  // namespace hyena::io
