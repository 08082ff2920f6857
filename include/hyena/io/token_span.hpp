// io/token_span.hpp: a read-only run of token ids stored as int32, uint16 or uint32.
//
// Token files keep ids in the narrowest type that holds the vocabulary; this span hides
// the width so loaders and evaluators read int32 ids from any of them without copying.
#pragma once
#include <cstdint>
#include <span>

#include "../config.hpp"

namespace hyena::io {

class token_span {
 public:
  enum class kind : std::uint8_t { i32, u16, u32 };

  token_span() = default;
  token_span(std::span<const std::int32_t> s) : data_(s.data()), size_(index_t(s.size())), kind_(kind::i32) {}
  token_span(std::span<const std::uint16_t> s) : data_(s.data()), size_(index_t(s.size())), kind_(kind::u16) {}
  token_span(std::span<const std::uint32_t> s) : data_(s.data()), size_(index_t(s.size())), kind_(kind::u32) {}

  index_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  kind storage() const { return kind_; }

  std::int32_t operator[](index_t i) const {
    switch (kind_) {
      case kind::u16: return static_cast<const std::uint16_t*>(data_)[i];
      case kind::u32: return static_cast<std::int32_t>(static_cast<const std::uint32_t*>(data_)[i]);
      default: return static_cast<const std::int32_t*>(data_)[i];
    }
  }

  // Ids [begin, begin + n) into out, widened to int32.
  void copy_to(index_t begin, index_t n, std::int32_t* out) const {
    HYENA_CHECK(begin >= 0 && n >= 0 && begin + n <= size_, "token_span: range [", begin, ", ", begin + n,
                ") outside [0, ", size_, ")");
    switch (kind_) {
      case kind::u16: copy_from(static_cast<const std::uint16_t*>(data_) + begin, n, out); break;
      case kind::u32: copy_from(static_cast<const std::uint32_t*>(data_) + begin, n, out); break;
      default: copy_from(static_cast<const std::int32_t*>(data_) + begin, n, out); break;
    }
  }

  token_span subspan(index_t begin, index_t n) const {
    HYENA_CHECK(begin >= 0 && n >= 0 && begin + n <= size_, "token_span: subspan [", begin, ", ", begin + n,
                ") outside [0, ", size_, ")");
    token_span s = *this;
    s.data_ = static_cast<const char*>(data_) + begin * (kind_ == kind::u16 ? 2 : 4);
    s.size_ = n;
    return s;
  }

 private:
  template <class S>
  static void copy_from(const S* src, index_t n, std::int32_t* out) {
    for (index_t i = 0; i < n; ++i) out[i] = static_cast<std::int32_t>(src[i]);
  }

  const void* data_ = nullptr;
  index_t size_ = 0;
  kind kind_ = kind::i32;
};

}  // namespace hyena::io
