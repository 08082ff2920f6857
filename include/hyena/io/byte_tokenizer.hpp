// io/byte_tokenizer.hpp: one token per byte (ids 0..255), an exact round trip of any bytes.
#pragma once
#include "tokenizer.hpp"

namespace hyena::io {

class byte_tokenizer final : public tokenizer {
 public:
  std::vector<std::int32_t> encode(std::string_view text) const override {
    std::vector<std::int32_t> ids(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  std::string decode(std::span<const std::int32_t> ids) const override {
    std::string out(ids.size(), '\0');
    for (std::size_t i = 0; i < ids.size(); ++i) {
      check_id(ids[i]);
      out[i] = static_cast<char>(static_cast<unsigned char>(ids[i]));
    }
    return out;
  }
  index_t vocab_size() const override { return 256; }
  std::string name() const override { return "byte"; }
  std::size_t byte_length(std::span<const std::int32_t> ids) const override { return ids.size(); }
};

}  // namespace hyena::io
