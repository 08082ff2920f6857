// io/safetensors.hpp: read and write the safetensors checkpoint format.
//
// Layout: u64 little-endian header length N, N bytes of JSON, then the data section.
// The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (byte
// offsets into the data section) plus an optional "__metadata__" string -> string map.
//
// The reader memory-maps the file and validates the whole header up front, so a bad file
// fails at open() with one hyena::error naming the file, the tensor and the problem. The rules
// (see parse()): keys unique; dtype one the format defines; shape and data_offsets plain
// non-negative integers; each range exactly element count x element size; the ranges, sorted,
// tiling the data section from byte 0 to its end with no gap, overlap or tail; the header one
// UTF-8 JSON object starting with '{', padded only with spaces.
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
#include <set>
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
    // A view's strides are the products of the trailing dimensions; with a 0 in front the file
    // is valid (no elements) but [0, 2^58, 2^40] still has strides beyond 2^63 - 1 (found by
    // fuzz_safetensors's UBSan).
    index_t stride = 1;
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d)
      if (__builtin_mul_overflow(stride, *d, &stride))
        fail(name, "shape ", dims_str(t.shape), " cannot be addressed: its strides exceed 2^63 - 1");
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

  // The format's whole rule set, as Python's `safetensors` enforces it (tests/reference/
  // safetensors_rules.py is the golden test), plus three points where the spec is stricter than
  // that reader and hyena follows the spec: keys are unique at every level (a duplicate is an
  // error, not "the last one wins"), the header begins with '{' and the JSON is followed only by
  // spaces (0x20), never by tabs, newlines or NULs.
  void parse() {
    const std::size_t size = file_.size();
    if (size < 8) fail("", "truncated file: ", size, " bytes, need at least 8 for the header length");
    std::uint64_t n = 0;
    std::memcpy(&n, file_.data(), 8);
    if (n > max_header_bytes) fail("", "header length ", n, " exceeds the limit of ", max_header_bytes, " bytes");
    if (n > size - 8) fail("", "truncated file: header length ", n, " runs past the end of the ", size, "-byte file");
    data_ = file_.data() + 8 + n;
    const std::uint64_t data_size = size - 8 - n;

    const nlohmann::json header = parse_header(reinterpret_cast<const char*>(file_.data() + 8), n);
    if (!header.is_object()) fail("", "header is not a JSON object");
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      if (name == "__metadata__") {
        parse_metadata(it.value());
        continue;
      }
      tensors_[name] = parse_entry(name, it.value(), data_size);
    }
    check_tiling(data_size);
  }

  // The header bytes: one UTF-8 JSON object, then only spaces; every key unique.
  nlohmann::json parse_header(const char* h, std::uint64_t n) const {
    std::uint64_t len = n;
    while (len > 0 && h[len - 1] == ' ') --len;
    if (len == 0) fail("", "header is empty: it must be a JSON object");
    if (h[0] != '{')
      fail("", "header is not a JSON object: it must begin with '{', found byte 0x", hex_byte(h[0]));
    // A NUL ends nlohmann's input early, so it is refused before parsing: two readers of one
    // file must never see two different headers.
    if (const void* nul = std::memchr(h, 0, len))
      fail("", "header padding: byte 0x00 at offset ", static_cast<const char*>(nul) - h,
           " of the header; the JSON object may be followed only by spaces (0x20)");
    if (h[len - 1] != '}' && nlohmann::json::accept(h, h + len))  // else the parse below names the JSON error
      fail("", "header padding: byte 0x", hex_byte(h[len - 1]), " at offset ", len - 1,
           " of the header; the JSON object may be followed only by spaces (0x20)");
    // nlohmann checks UTF-8 inside strings and that nothing but whitespace follows the value;
    // the callback sees every key of every object and records the first repeated one.
    std::vector<std::set<std::string>> open_objects;
    std::string duplicate;
    std::size_t duplicate_depth = 0;
    auto on_event = [&](int, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
      using event = nlohmann::json::parse_event_t;
      if (ev == event::object_start) {
        open_objects.emplace_back();
      } else if (ev == event::object_end) {
        if (!open_objects.empty()) open_objects.pop_back();
      } else if (ev == event::key && duplicate.empty() && !open_objects.empty()) {
        const std::string& k = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(k).second) duplicate = k, duplicate_depth = open_objects.size();
      }
      return true;
    };
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(h, h + len, on_event);
    } catch (const nlohmann::json::exception& e) {
      fail("", "header is not valid JSON: ", e.what());
    }
    if (!duplicate.empty()) {
      if (duplicate_depth == 1) fail(duplicate, "duplicate key: the header names it more than once");
      fail("", "duplicate key '", duplicate, "' inside a header entry");
    }
    return header;
  }

  // Sorted by (begin, end), the ranges must follow one another from byte 0 to the end of the data
  // section: no gap, no overlap, no tail (empty tensors sit at the position they name).
  void check_tiling(std::uint64_t data_size) const {
    std::vector<std::pair<const std::string*, const tensor_info*>> order;
    for (const auto& [name, t] : tensors_) order.push_back({&name, &t});
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return std::pair(a.second->begin, a.second->end) < std::pair(b.second->begin, b.second->end);
    });
    std::uint64_t cursor = 0;
    const std::string* previous = nullptr;
    for (const auto& [name, t] : order) {
      if (t->begin > cursor)
        fail(*name, "gap: data_offsets [", t->begin, ", ", t->end, ") start at byte ", t->begin, " but ",
             previous ? "the previous tensor '" + *previous + "' ends at byte " : std::string("the data section starts at byte "),
             cursor, "; tensors must cover the data section exactly");
      if (t->begin < cursor)
        fail(*name, "data range [", t->begin, ", ", t->end, ") overlaps tensor '", *previous, "' ending at byte ",
             cursor);
      cursor = t->end;
      if (t->end > t->begin) previous = name;
    }
    if (cursor != data_size)
      fail("", "trailing bytes: the tensors end at byte ", cursor, " of the ", data_size,
           "-byte data section; tensors must cover the data section exactly");
  }

  static std::string hex_byte(char c) {
    const char* digits = "0123456789abcdef";
    const auto u = static_cast<unsigned char>(c);
    return {digits[u >> 4], digits[u & 15]};
  }

  void parse_metadata(const nlohmann::json& m) {
    if (m.is_null()) return;  // "__metadata__": null is an absent map
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

    // Plain non-negative integers: no sign (not even -0), no fraction, no exponent, below 2^64.
    for (const auto& d : e["shape"])
      if (!d.is_number_unsigned())
        fail(name, "shape ", e["shape"].dump(), ": dimensions must be non-negative integers");
    for (const auto& o : e["data_offsets"])
      if (!o.is_number_unsigned())
        fail(name, "data_offsets ", e["data_offsets"].dump(), " must be non-negative integers");
    t.begin = e["data_offsets"][0].get<std::uint64_t>();
    t.end = e["data_offsets"][1].get<std::uint64_t>();
    if (t.begin > t.end) fail(name, "data_offsets [", t.begin, ", ", t.end, "]: begin is after end");
    if (t.end > data_size)
      fail(name, "truncated file: data_offsets end ", t.end, " is beyond the ", data_size, "-byte data section");

    // Bytes the shape needs: the element count folded left to right, then times the bits per
    // element; any overflow on the way is an error (as in the reference reader, even when a later
    // dimension is 0), and F4 / F6 tensors must fill whole bytes.
    const std::uint64_t span = t.end - t.begin;
    std::uint64_t count = 1, bits = 0;
    bool fits = true;
    for (const auto& d : e["shape"]) fits = fits && !__builtin_mul_overflow(count, d.get<std::uint64_t>(), &count);
    fits = fits && !__builtin_mul_overflow(count, static_cast<std::uint64_t>(dtype_bits(t.type)), &bits);
    if (!fits)
      fail(name, "shape ", e["shape"].dump(), " of ", ds, " needs more than 2^64 bytes (data_offsets [", t.begin, ", ",
           t.end, "])");
    for (const auto& d : e["shape"]) {
      if (d.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
        fail(name, "shape ", e["shape"].dump(), " has a dimension beyond 2^63 - 1");
      t.shape.push_back(d.get<index_t>());
    }
    if (bits % 8 != 0)
      fail(name, "shape ", dims_str(t.shape), " of ", ds, " is ", bits, " bits, not a whole number of bytes");
    if (bits / 8 != span)
      fail(name, "data_offsets [", t.begin, ", ", t.end, "] span ", span, " bytes, but shape ", dims_str(t.shape),
           " of ", ds, " needs ", bits / 8);
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

