// io/token_file.hpp: tokenized corpora on disk, written atomically and read by mmap.
//
// Layout (little-endian), a 64-byte header then the ids:
//   0  magic "HYTK"          4  u32 version (1)      8  u32 bytes per id (2 or 4)
//   12 u32 header bytes (64) 16 u64 id count         24 u64 vocab size
//   32 u64 source bytes (UTF-8 bytes of the text the ids came from; 0 = unknown)
//   40 16 reserved zero bytes                        56 u64 FNV-1a hash of bytes [0, 56)
// The file size must be exactly 64 + count * bytes-per-id, so truncation is caught on open;
// every id is checked < vocab on open (one pass over the mapped ids; can be turned off).
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "atomic_file.hpp"
#include "mapped_file.hpp"
#include "token_span.hpp"
#include "tokenizer.hpp"

namespace hyena::io {

static_assert(std::endian::native == std::endian::little, "token files assume a little-endian host");

enum class token_dtype : std::uint32_t { uint16 = 2, uint32 = 4 };

// The narrowest dtype that holds ids [0, vocab).
inline token_dtype smallest_dtype(index_t vocab) {
  return vocab <= 65536 ? token_dtype::uint16 : token_dtype::uint32;
}

namespace detail {
inline constexpr std::size_t token_header_bytes = 64;
inline constexpr std::uint32_t token_file_version = 1;
inline constexpr char token_magic[4] = {'H', 'Y', 'T', 'K'};

inline std::uint64_t fnv1a(const unsigned char* p, std::size_t n) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
template <class U>
void put(unsigned char* h, std::size_t at, U v) { std::memcpy(h + at, &v, sizeof(U)); }
template <class U>
U get(const unsigned char* h, std::size_t at) {
  U v;
  std::memcpy(&v, h + at, sizeof(U));
  return v;
}

}  // namespace detail

// Writes ids to `path` atomically (a temp file beside it, then rename); on any error the
// temp file is removed and an existing file at `path` is left as it was.
inline void write_token_file(const std::string& path, std::span<const std::int32_t> ids, index_t vocab,
                             std::uint64_t source_bytes = 0, std::optional<token_dtype> dtype = std::nullopt) {
  HYENA_CHECK(vocab > 0 && vocab <= INT32_MAX, "token file ", path, ": vocab ", vocab, " out of range");
  token_dtype dt = dtype.value_or(smallest_dtype(vocab));
  HYENA_CHECK(dt == token_dtype::uint16 || dt == token_dtype::uint32, "token file ", path, ": unknown dtype");
  HYENA_CHECK(dt == token_dtype::uint32 || vocab <= 65536, "token file ", path, ": vocab ", vocab,
              " does not fit uint16 ids");
  for (std::size_t i = 0; i < ids.size(); ++i)
    HYENA_CHECK(ids[i] >= 0 && ids[i] < vocab, "token file ", path, ": id ", ids[i], " at ", i,
                " outside [0, ", vocab, ")");

  unsigned char h[detail::token_header_bytes] = {};
  std::memcpy(h, detail::token_magic, 4);
  detail::put<std::uint32_t>(h, 4, detail::token_file_version);
  detail::put<std::uint32_t>(h, 8, static_cast<std::uint32_t>(dt));
  detail::put<std::uint32_t>(h, 12, detail::token_header_bytes);
  detail::put<std::uint64_t>(h, 16, ids.size());
  detail::put<std::uint64_t>(h, 24, static_cast<std::uint64_t>(vocab));
  detail::put<std::uint64_t>(h, 32, source_bytes);
  detail::put<std::uint64_t>(h, 56, detail::fnv1a(h, 56));

  atomic_file f(path, "token file");
  f.write(h, sizeof h);
  // Narrow in chunks so memory stays small for large corpora.
  constexpr std::size_t chunk = 1 << 16;
  std::vector<std::uint16_t> b16;
  std::vector<std::uint32_t> b32;
  for (std::size_t at = 0; at < ids.size(); at += chunk) {
    std::size_t n = std::min(chunk, ids.size() - at);
    if (dt == token_dtype::uint16) {
      b16.assign(ids.begin() + at, ids.begin() + at + n);
      f.write(b16.data(), n * 2);
    } else {
      b32.assign(ids.begin() + at, ids.begin() + at + n);
      f.write(b32.data(), n * 4);
    }
  }
  f.commit();
}

// A token file mapped read-only. Move-only; the span stays valid while the object lives
// (moving keeps the mapping where it is).
class token_file {
 public:
  token_file() = default;
  // Opens and validates the file; check_ids = false skips the pass over the ids (the
  // caller then vouches that every id < vocab, e.g. for a file it just wrote).
  explicit token_file(const std::string& path, bool check_ids = true) : map_(path) { parse(check_ids); }

  token_span tokens() const { return tokens_; }
  index_t size() const { return tokens_.size(); }
  index_t vocab() const { return vocab_; }
  token_dtype dtype() const { return dtype_; }
  std::uint64_t source_bytes() const { return source_bytes_; }
  const std::string& path() const { return map_.path(); }
  // Text bytes per token over the whole file (0 when the source size is unknown).
  double bytes_per_token() const { return size() ? double(source_bytes_) / double(size()) : 0.0; }

 private:
  [[noreturn]] void fail(const std::string& problem) const { HYENA_FAIL("token file ", map_.path(), ": ", problem); }

  void parse(bool check_all) {
    const auto* h = reinterpret_cast<const unsigned char*>(map_.data());
    const std::size_t bytes = map_.size();
    if (bytes < detail::token_header_bytes)
      fail("truncated: " + std::to_string(bytes) + " bytes, shorter than the 64-byte header");
    if (std::memcmp(h, detail::token_magic, 4) != 0) fail("bad magic (not a HYTK token file)");
    auto version = detail::get<std::uint32_t>(h, 4);
    if (version != detail::token_file_version) fail("unsupported version " + std::to_string(version));
    if (detail::get<std::uint32_t>(h, 12) != detail::token_header_bytes) fail("bad header length");
    if (detail::get<std::uint64_t>(h, 56) != detail::fnv1a(h, 56)) fail("header checksum mismatch (corrupt header)");
    auto width = detail::get<std::uint32_t>(h, 8);
    if (width != 2 && width != 4) fail("unknown dtype (" + std::to_string(width) + " bytes per id)");
    dtype_ = static_cast<token_dtype>(width);
    auto count = detail::get<std::uint64_t>(h, 16), vocab = detail::get<std::uint64_t>(h, 24);
    source_bytes_ = detail::get<std::uint64_t>(h, 32);
    if (vocab == 0 || vocab > INT32_MAX || (width == 2 && vocab > 65536))
      fail("vocab " + std::to_string(vocab) + " invalid for " + std::to_string(width) + "-byte ids");
    vocab_ = static_cast<index_t>(vocab);
    std::size_t payload = bytes - detail::token_header_bytes;
    if (count > payload / width || payload != count * width)
      fail("size mismatch: header says " + std::to_string(count) + " ids (" +
           std::to_string(detail::token_header_bytes + count * width) + " bytes), file has " +
           std::to_string(bytes) + " bytes" + (payload < count * width ? " (truncated)" : ""));
    const void* ids = h + detail::token_header_bytes;
    if (width == 2) {
      tokens_ = std::span(static_cast<const std::uint16_t*>(ids), count);
      if (check_all) check_ids(static_cast<const std::uint16_t*>(ids), count);
    } else {
      tokens_ = std::span(static_cast<const std::uint32_t*>(ids), count);
      if (check_all) check_ids(static_cast<const std::uint32_t*>(ids), count);
    }
  }

  template <class U>
  void check_ids(const U* ids, std::uint64_t n) const {
    const auto vocab = static_cast<std::uint64_t>(vocab_);
    for (std::uint64_t i = 0; i < n; ++i)
      if (ids[i] >= vocab)
        fail("id " + std::to_string(ids[i]) + " at index " + std::to_string(i) + " is >= vocab " +
             std::to_string(vocab));
  }

  mapped_file map_;
  token_span tokens_;
  index_t vocab_ = 0;
  std::uint64_t source_bytes_ = 0;
  token_dtype dtype_ = token_dtype::uint16;
};

// The whole of a file as bytes.
inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HYENA_CHECK(in.good(), "read_text_file: cannot open ", path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  HYENA_CHECK(!in.bad(), "read_text_file: read error in ", path);
  return text;
}

struct prepared_file {
  index_t tokens = 0;
  std::uint64_t bytes = 0;  // source bytes the tokens stand for
};

// Tokenizes a text file into a token file (recording the text's byte count for bits per byte).
inline prepared_file prepare_token_file(const std::string& text_path, const std::string& out_path,
                                        const tokenizer& tok) {
  std::string text = read_text_file(text_path);
  auto ids = tok.encode(text);
  write_token_file(out_path, ids, tok.vocab_size(), text.size());
  return {index_t(ids.size()), text.size()};
}

// Tokenizes a text file and writes the last `val_fraction` of its tokens (rounded, at least
// one) to val_path and the rest to train_path; each part records its own byte count.
inline std::pair<prepared_file, prepared_file> prepare_token_split(const std::string& text_path,
                                                                   const std::string& train_path,
                                                                   const std::string& val_path,
                                                                   const tokenizer& tok, double val_fraction) {
  HYENA_CHECK(val_fraction > 0 && val_fraction < 1, "prepare_token_split: val_fraction ", val_fraction,
              " not in (0, 1)");
  auto ids = tok.encode(read_text_file(text_path));
  const index_t n = index_t(ids.size());
  const index_t n_val = std::max<index_t>(1, index_t(std::llround(double(n) * val_fraction)));
  HYENA_CHECK(n_val < n, "prepare_token_split: ", text_path, " has too few tokens (", n, ") to split");
  std::span<const std::int32_t> all(ids), train = all.first(n - n_val), val = all.last(n_val);
  prepared_file a{index_t(train.size()), tok.byte_length(train)}, b{index_t(val.size()), tok.byte_length(val)};
  write_token_file(train_path, train, tok.vocab_size(), a.bytes);
  write_token_file(val_path, val, tok.vocab_size(), b.bytes);
  return {a, b};
}

}  // namespace hyena::io
