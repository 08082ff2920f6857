// io/bpe_tokenizer.hpp: a byte-level BPE tokenizer that encodes exactly as Hugging Face
// `tokenizers` does for the GPT-2 family (GPT-2, GPT-NeoX-20B / Pythia):
//   1. added tokens are split out first, leftmost-longest: those with normalized=false on the raw
//      text, then those with normalized=true on each remaining piece after normalisation;
//   2. the normaliser (NFC or none) runs on each piece between added tokens;
//   3. the ByteLevel pre-tokenizer (optional prefix space, GPT-2's regex) cuts words;
//   4. the BPE model (bpe_model.hpp) turns each word's bytes into ids.
// Invalid UTF-8 is kept byte for byte (see utf8.hpp) when the vocabulary has a token for each of
// its bytes (GPT-2's has all 256); a byte of an invalid sequence that has none, with no unk token
// to stand for it (GPT-NeoX-20B's vocabulary lacks 0xC0, 0xC1 and 0xF5..0xFF, bytes valid UTF-8
// never holds), is an error naming the byte and its offset, never a silent drop. Bytes of valid
// UTF-8 without a token are dropped, as HF does. Differences from HF, by design:
// decode() returns the raw bytes (HF replaces invalid UTF-8 from cut sequences with U+FFFD) and
// keeps special tokens (HF's Python decode skips them by default); post-processors (bos/eos
// templates) are not applied, as the tokenizer interface says.
#pragma once
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bpe_model.hpp"
#include "gpt2_pretokenizer.hpp"
#include "nfc.hpp"
#include "tokenizer.hpp"

namespace hyena::io {

struct added_token {
  std::string content;
  std::int32_t id = 0;
  bool special = false;     // special tokens count 0 bytes in byte_length()
  bool normalized = false;  // matched after normalisation (true) or on the raw text (false)
};

struct bpe_tokenizer_options {
  std::string name = "bpe";
  bool nfc = false;               // normalizer: NFC, or none
  bool add_prefix_space = false;  // ByteLevel: a space before a piece that does not start with one
  bool use_regex = true;          // ByteLevel: split with GPT-2's regex (else each piece is one word)
  std::optional<std::int32_t> bos, eos;
};

namespace bpe_detail {
// Leftmost-longest search for a fixed set of strings (a handful of added tokens).
class literal_matcher {
 public:
  void add(std::string s, std::int32_t id) {
    if (s.empty()) return;
    const auto first = static_cast<unsigned char>(s[0]);
    if (s.size() == 1) has_single_[first] = true;
    else second_[first][static_cast<unsigned char>(s[1])] = true;
    auto& bucket = by_first_[first];
    bucket.push_back({std::move(s), id});
    std::stable_sort(bucket.begin(), bucket.end(),
                     [](const entry& a, const entry& b) { return a.text.size() > b.text.size(); });
  }
  bool empty() const {
    return std::all_of(std::begin(by_first_), std::end(by_first_), [](const auto& b) { return b.empty(); });
  }
  // Calls text(piece) for the text between matches (non-empty pieces only) and token(id) for each match.
  template <class Text, class Token>
  void split(std::string_view s, Text&& text, Token&& token) const {
    std::size_t done = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      const auto& bucket = by_first_[c];
      if (bucket.empty()) continue;
      // Most candidates fail at the second byte (a space before a letter, with NeoX's space runs).
      if (!has_single_[c] && (i + 1 == s.size() || !second_[c][static_cast<unsigned char>(s[i + 1])])) continue;
      for (const entry& e : bucket) {  // longest first
        if (s.compare(i, e.text.size(), e.text) != 0) continue;
        if (i > done) text(s.substr(done, i - done));
        token(e.id);
        done = i + e.text.size();
        i = done - 1;
        break;
      }
    }
    if (done < s.size()) text(s.substr(done));
  }

 private:
  struct entry {
    std::string text;
    std::int32_t id;
  };
  std::vector<entry> by_first_[256];
  std::vector<std::vector<bool>> second_ = std::vector<std::vector<bool>>(256, std::vector<bool>(256, false));
  bool has_single_[256]{};
};
}  // namespace bpe_detail

class bpe_tokenizer final : public tokenizer {
 public:
  bpe_tokenizer(std::unique_ptr<bpe_model> model, std::vector<added_token> added, bpe_tokenizer_options opt)
      : model_(std::move(model)), added_(std::move(added)), opt_(std::move(opt)) {
    HYENA_CHECK(model_ != nullptr, "bpe_tokenizer: no model");
    std::int64_t n = std::int64_t(model_->size());
    for (const auto& t : added_) {
      HYENA_CHECK(t.id >= 0, opt_.name, ": added token '", t.content, "' has negative id ", t.id);
      HYENA_CHECK(!t.content.empty(), opt_.name, ": added token ", t.id, " is empty");
      n = std::max<std::int64_t>(n, std::int64_t(t.id) + 1);
      (t.normalized ? normalized_ : raw_).add(t.content, t.id);
    }
    // Per-id bytes for decode: model tokens through the ByteLevel decoder; added tokens too, as
    // HF does, which keeps a token's own UTF-8 when it has characters outside the byte map.
    decoded_.resize(std::size_t(n));
    known_.assign(std::size_t(n), 0);
    special_.assign(std::size_t(n), 0);
    const auto set = [&](std::int32_t id, const std::string& text) {
      auto bytes = byte_level_to_bytes(text);
      decoded_[id] = bytes ? std::move(*bytes) : text;
      known_[id] = 1;
    };
    for (std::int32_t id = 0; id < std::int32_t(model_->size()); ++id)
      if (!model_->token(id).empty()) set(id, model_->token(id));
    for (const auto& t : added_) {  // added tokens win over the model's token with the same id
      set(t.id, t.content);
      special_[t.id] = t.special;
    }
    for (int b = 128; b < 256; ++b)
      if (!model_->has_byte(static_cast<unsigned char>(b)) && !model_->options().unk_id) missing_bytes_ = true;
  }

  std::vector<std::int32_t> encode(std::string_view text) const override {
    if (missing_bytes_) check_invalid_bytes(text);
    std::vector<std::int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    auto token = [&](std::int32_t id) { ids.push_back(id); };
    raw_.split(
        text,
        [&](std::string_view piece) {
          if (!opt_.nfc || unicode::nfc_trivial(piece)) {
            normalized_.split(piece, [&](std::string_view p) { words(p, ids); }, token);
          } else {
            const std::string norm = unicode::nfc(piece);
            normalized_.split(norm, [&](std::string_view p) { words(p, ids); }, token);
          }
        },
        token);
    return ids;
  }

  std::string decode(std::span<const std::int32_t> ids) const override {
    std::string out;
    for (std::int32_t id : ids) {
      check_known(id);
      out += decoded_[std::size_t(id)];
    }
    return out;
  }

  std::size_t byte_length(std::span<const std::int32_t> ids) const override {
    std::size_t n = 0;
    for (std::int32_t id : ids) {
      check_known(id);
      if (!special_[std::size_t(id)]) n += decoded_[std::size_t(id)].size();
    }
    return n;
  }

  index_t vocab_size() const override { return index_t(decoded_.size()); }
  std::string name() const override { return opt_.name; }
  std::optional<std::int32_t> bos_id() const override { return opt_.bos; }
  std::optional<std::int32_t> eos_id() const override { return opt_.eos; }

  // The id of a token string (added tokens first, then the model's byte-level strings).
  std::optional<std::int32_t> token_to_id(std::string_view token) const {
    for (const auto& t : added_)
      if (t.content == token) return t.id;
    return model_->id(token);
  }
  const bpe_model& model() const { return *model_; }
  const std::vector<added_token>& added_tokens() const { return added_; }
  const bpe_tokenizer_options& options() const { return opt_; }

 private:
  void check_known(std::int32_t id) const {
    check_id(id);
    HYENA_CHECK(known_[std::size_t(id)], opt_.name, " tokenizer: id ", id, " has no token");
  }

  // Throws at the first byte of an invalid UTF-8 sequence that has no token (see the header).
  void check_invalid_bytes(std::string_view text) const {
    for (std::size_t i = 0; i < text.size();) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x80) {
        ++i;
        continue;
      }
      const auto d = utf8::decode(text, i);
      if (d.cp == utf8::invalid && !model_->has_byte(c)) {
        static const char* hex = "0123456789ABCDEF";
        HYENA_FAIL(opt_.name, " tokenizer: byte 0x", hex[c >> 4], hex[c & 15], " at offset ", i,
                   " of the text is not valid UTF-8 and the vocabulary has no token for it (nor an unk token); "
                   "decode the text as UTF-8 with replacement first");
      }
      i += d.len;
    }
  }

  // ByteLevel pre-tokenizer + BPE for one piece between added tokens.
  void words(std::string_view piece, std::vector<std::int32_t>& ids) const {
    std::string prefixed;
    if (opt_.add_prefix_space && piece.front() != ' ') {
      prefixed.reserve(piece.size() + 1);
      prefixed.push_back(' ');
      prefixed.append(piece);
      piece = prefixed;
    }
    if (!opt_.use_regex) {
      model_->encode_word(piece, ids);
      return;
    }
    gpt2_pretokenize(piece, [&](std::string_view w) { model_->encode_word(w, ids); });
  }

  std::unique_ptr<bpe_model> model_;
  std::vector<added_token> added_;
  bpe_tokenizer_options opt_;
  bpe_detail::literal_matcher raw_, normalized_;
  std::vector<std::string> decoded_;
  std::vector<std::uint8_t> known_, special_;
  bool missing_bytes_ = false;  // some byte >= 0x80 has no token and there is no unk
};

}  // namespace hyena::io
