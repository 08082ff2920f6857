// io/tokenizer.hpp: the interface every tokenizer (bytes, BPE, sentencepiece) implements.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../config.hpp"

namespace hyena::io {

class tokenizer {
 public:
  virtual ~tokenizer() = default;

  // Text to ids; adds no bos/eos (callers add them where a model expects them).
  virtual std::vector<std::int32_t> encode(std::string_view text) const = 0;
  // Ids to text; throws hyena::error for an id outside [0, vocab_size()).
  virtual std::string decode(std::span<const std::int32_t> ids) const = 0;
  virtual index_t vocab_size() const = 0;
  virtual std::string name() const = 0;
  virtual std::optional<std::int32_t> bos_id() const { return std::nullopt; }
  virtual std::optional<std::int32_t> eos_id() const { return std::nullopt; }

  // Bytes of UTF-8 text these ids stand for: the denominator of bits per byte,
  // bpb = (sum of -ln p over the ids) / (ln 2 * byte_length(ids)). Special tokens count 0.
  virtual std::size_t byte_length(std::span<const std::int32_t> ids) const { return decode(ids).size(); }

  double bytes_per_token(std::span<const std::int32_t> ids) const {
    return ids.empty() ? 0.0 : double(byte_length(ids)) / double(ids.size());
  }

 protected:
  void check_id(std::int32_t id) const {
    HYENA_CHECK(id >= 0 && id < vocab_size(), name(), " tokenizer: id ", id, " outside [0, ", vocab_size(), ")");
  }
};

// Bits per byte from a summed negative log-likelihood in nats over text of `bytes` bytes.
inline double bits_per_byte(double nll_nats, double bytes) {
  HYENA_CHECK(bytes > 0, "bits_per_byte: byte count must be positive, got ", bytes);
  return nll_nats / (bytes * 0.69314718055994530942);
}

}  // namespace hyena::io
