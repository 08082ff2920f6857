// io/safetensors.hpp: read and write the safetensors checkpoint format.
//
// Layout: u64 little-endian header length N, N bytes of JSON, then the data section.
// The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (byte
// offsets into the data section) plus an optional "__metadata__" string -> string map.
//
// The reader memory-maps the file and validates the whole header up front, so a bad file
// fails at open() with one hyena::error naming the file, the tensor and the problem.
// The writer produces files that Python's `safetensors` accepts: its loader rejects gaps
// between tensors, so tensors are packed back to back, ordered by element size (8-byte
// types first, then 4, then 2) and by name within each size. The data section starts on
// an 8-byte boundary (header padded with spaces), so every tensor is aligned to its own
// element size. The file is written to a temp file in the destination folder, fsynced
// and renamed over the destination only when complete.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../tensor/tensor.hpp"
#include "half.hpp"
#include "mapped_file.hpp"
#include "safetensors_dtype.hpp"
#include "safetensors_writer.hpp"

namespace hyena::io {

struct tensor_info {
  dtype type = dtype::F32;
  std::vector<index_t> shape;  // any rank; hyena views hold at most max_rank
  std::uint64_t begin = 0, end = 0;  // byte range in the data section

  index_t numel() const {
    index_t n = 1;
    for (index_t d : shape) n *= d;
    return n;
  }
  bool matches(const hyena::shape& s) const {
    if (static_cast<std::size_t>(s.rank) != shape.size()) return false;
    for (int i = 0; i < s.rank; ++i)
      if (s[i] != shape[i]) return false;
    return true;
  }
};

class safetensors_file {
 public:
  static constexpr std::uint64_t max_header_bytes = 100'000'000;  // the reference implementation's cap

  // Maps and validates `path`; throws hyena::error on any problem.
  static safetensors_file open(const std::string& path) {
    safetensors_file f;
    f.file_ = mapped_file(path);
    f.parse();
    return f;
  }

  const std::string& path() const { return file_.path(); }
  std::vector<std::string> names() const {  // sorted
    std::vector<std::string> out;
    for (const auto& [n, _] : tensors_) out.push_back(n);
    return out;
  }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const tensor_info& info(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) fail(name, "no such tensor (file has ", tensors_.size(), " tensors)");
    return it->second;
  }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The tensor's raw little-endian bytes (not necessarily aligned for its type).
  std::span<const std::byte> raw(const std::string& name) const {
    const tensor_info& t = info(name);
    return {data_ + t.begin, static_cast<std::size_t>(t.end - t.begin)};
  }

  // Converts the tensor into dst (contiguous, the tensor's shape).
  template <class T>
  void read(const std::string& name, view<T> dst) const {
    static_assert(std::is_arithmetic_v<T>, "safetensors: read into an arithmetic type");
    const tensor_info& t = info(name);
    if (!t.matches(dst.shape))
      fail(name, "shape mismatch: file has ", dims_str(t.shape), ", destination is ", dst.shape);
    if (!dst.contiguous()) fail(name, "destination view is not contiguous");
    convert(name, t.type, data_ + t.begin, dst.data, t.numel());
  }

  // A fresh tensor holding the converted values (rank <= max_rank).
  template <class T>
  tensor<T> load(const std::string& name) const {
    const tensor_info& t = info(name);
    if (t.shape.size() > static_cast<std::size_t>(max_rank))
      fail(name, "rank ", t.shape.size(), " exceeds the supported ", max_rank);
    hyena::shape s;
    for (index_t d : t.shape) s.dims[s.rank++] = d;
    tensor<T> out(s);
    read<T>(name, out.v());
    return out;
  }

 private:
  template <class... Parts>
  [[noreturn]] void fail(const std::string& tensor, const Parts&... parts) const {
    if (tensor.empty()) HYENA_FAIL("safetensors: ", path(), ": ", parts...);
    HYENA_FAIL("safetensors: ", path(), ": tensor '", tensor, "': ", parts...);
  }

  void parse() {
    const std::size_t size = file_.size();
    if (size < 8) fail("", "truncated file: ", size, " bytes, need at least 8 for the header length");
    std::uint64_t n = 0;
    std::memcpy(&n, file_.data(), 8);
    if (n > max_header_bytes) fail("", "header length ", n, " exceeds the limit of ", max_header_bytes, " bytes");
    if (n > size - 8) fail("", "truncated file: header length ", n, " runs past the end of the ", size, "-byte file");
    data_ = file_.data() + 8 + n;
    const std::uint64_t data_size = size - 8 - n;

    nlohmann::json header;
    try {
      const char* h = reinterpret_cast<const char*>(file_.data() + 8);
      header = nlohmann::json::parse(h, h + n);  // trailing space padding is plain JSON whitespace
    } catch (const nlohmann::json::exception& e) {
      fail("", "header is not valid JSON: ", e.what());
    }
    if (!header.is_object()) fail("", "header is not a JSON object");

    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      if (name == "__metadata__") {
        parse_metadata(it.value());
        continue;
      }
      tensors_[name] = parse_entry(name, it.value(), data_size);
    }

    // Ranges must not overlap: sorted by begin, each must start at or after the previous end.
    std::vector<std::pair<const std::string*, const tensor_info*>> order;
    for (const auto& [n2, t] : tensors_)
      if (t.end > t.begin) order.push_back({&n2, &t});  // empty tensors occupy no bytes
    std::sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.second->begin < b.second->begin; });
    for (std::size_t i = 1; i < order.size(); ++i)
      if (order[i].second->begin < order[i - 1].second->end)
        fail(*order[i].first, "data range [", order[i].second->begin, ", ", order[i].second->end,
             ") overlaps tensor '", *order[i - 1].first, "' [", order[i - 1].second->begin, ", ",
             order[i - 1].second->end, ")");
  }

  void parse_metadata(const nlohmann::json& m) {
    if (!m.is_object()) fail("", "__metadata__ is not a JSON object");
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!it.value().is_string()) fail("", "__metadata__ value for '", it.key(), "' is not a string");
      metadata_[it.key()] = it.value().get<std::string>();
    }
  }

  tensor_info parse_entry(const std::string& name, const nlohmann::json& e, std::uint64_t data_size) const {
    if (!e.is_object()) fail(name, "entry is not a JSON object");
    if (!e.contains("dtype") || !e["dtype"].is_string()) fail(name, "missing or non-string dtype");
    if (!e.contains("shape") || !e["shape"].is_array()) fail(name, "missing or non-array shape");
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2)
      fail(name, "data_offsets must be an array [begin, end]");

    tensor_info t;
    const std::string ds = e["dtype"].get<std::string>();
    auto dt = parse_dtype(ds);
    if (!dt) fail(name, "unknown dtype '", ds, "'");
    t.type = *dt;

    for (const auto& d : e["shape"]) {
      if (!d.is_number_integer()) fail(name, "shape ", e["shape"].dump(), " has a non-integer dimension");
      if (!d.is_number_unsigned() && d.get<std::int64_t>() < 0)
        fail(name, "shape ", e["shape"].dump(), " has a negative dimension");
      if (d.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
        fail(name, "shape ", e["shape"].dump(), " has a dimension too large");
      t.shape.push_back(d.get<index_t>());
    }

    for (const auto& o : e["data_offsets"])
      if (!o.is_number_integer() || (!o.is_number_unsigned() && o.get<std::int64_t>() < 0))
        fail(name, "data_offsets ", e["data_offsets"].dump(), " must be non-negative integers");
    t.begin = e["data_offsets"][0].get<std::uint64_t>();
    t.end = e["data_offsets"][1].get<std::uint64_t>();
    if (t.begin > t.end) fail(name, "data_offsets [", t.begin, ", ", t.end, "]: begin is after end");
    if (t.end > data_size)
      fail(name, "truncated file: data_offsets end ", t.end, " is beyond the ", data_size, "-byte data section");

    // Bytes the shape needs; a product that overflows u64 can never match.
    const std::uint64_t span = t.end - t.begin;
    std::uint64_t need = dtype_size(t.type);
    bool fits = true;
    for (index_t d : t.shape) fits = fits && !__builtin_mul_overflow(need, static_cast<std::uint64_t>(d), &need);
    if (std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end()) need = 0, fits = true;
    if (!fits || need != span)
      fail(name, "data_offsets [", t.begin, ", ", t.end, "] span ", span, " bytes, but shape ", dims_str(t.shape),
           " of ", ds, " needs ", fits ? std::to_string(need) : "more than 2^64");
    return t;
  }

  // Element-wise conversion from the file's dtype to T; src may be unaligned.
  template <class S, class T, class F>
  static void convert_each(const std::byte* src, T* dst, index_t n, F f) {
    for (index_t i = 0; i < n; ++i) {
      S s;
      std::memcpy(&s, src + i * sizeof(S), sizeof(S));
      dst[i] = static_cast<T>(f(s));
    }
  }
  template <class T>
  void convert(const std::string& name, dtype type, const std::byte* src, T* dst, index_t n) const {
    if (n == 0) return;  // an empty tensor: its pointers may be null, and memcpy must not see them
    auto same = [](auto v) { return v; };
    switch (type) {
      case dtype::F32:
        if constexpr (std::is_same_v<T, float>) {
          std::memcpy(dst, src, sizeof(float) * static_cast<std::size_t>(n));
          return;
        }
        return convert_each<float>(src, dst, n, same);
      case dtype::F64:
        if constexpr (std::is_same_v<T, double>) {
          std::memcpy(dst, src, sizeof(double) * static_cast<std::size_t>(n));
          return;
        }
        return convert_each<double>(src, dst, n, same);
      case dtype::F16: return convert_each<std::uint16_t>(src, dst, n, fp16_to_float);
      case dtype::BF16: return convert_each<std::uint16_t>(src, dst, n, bf16_to_float);
      case dtype::I64: return convert_each<std::int64_t>(src, dst, n, same);
      case dtype::I32: return convert_each<std::int32_t>(src, dst, n, same);
      case dtype::I16: return convert_each<std::int16_t>(src, dst, n, same);
      case dtype::I8: return convert_each<std::int8_t>(src, dst, n, same);
      case dtype::U64: return convert_each<std::uint64_t>(src, dst, n, same);
      case dtype::U32: return convert_each<std::uint32_t>(src, dst, n, same);
      case dtype::U16: return convert_each<std::uint16_t>(src, dst, n, same);
      case dtype::U8: return convert_each<std::uint8_t>(src, dst, n, same);
      case dtype::BOOL: return convert_each<std::uint8_t>(src, dst, n, [](std::uint8_t b) { return b != 0; });
      default: fail(name, "reading dtype ", dtype_name(type), " is not supported");
    }
  }

  mapped_file file_;
  const std::byte* data_ = nullptr;
  std::map<std::string, tensor_info> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace hyena::io

