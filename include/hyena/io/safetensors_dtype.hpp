// io/safetensors_dtype.hpp: the safetensors element types, their names and sizes.
#pragma once
#include <bit>
#include <cstddef>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "../config.hpp"

namespace hyena::io {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

// Every element type the format defines (safetensors 0.8). hyena converts the first 13 (F64 ..
// BOOL); the others are listed so that a file holding them is parsed and checked in full, and
// reading such a tensor fails naming its type. F4 and F6 pack 4 and 6 bits per element.
enum class dtype {
  F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL,
  F8_E4M3, F8_E5M2, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, F6_E2M3, F6_E3M2, F4, C64
};

struct dtype_desc {
  dtype type;
  std::string_view name;
  std::size_t bits;
};
inline constexpr dtype_desc dtype_table[] = {
    {dtype::F64, "F64", 64},  {dtype::F32, "F32", 32},  {dtype::F16, "F16", 16},  {dtype::BF16, "BF16", 16},
    {dtype::I64, "I64", 64},  {dtype::I32, "I32", 32},  {dtype::I16, "I16", 16},  {dtype::I8, "I8", 8},
    {dtype::U64, "U64", 64},  {dtype::U32, "U32", 32},  {dtype::U16, "U16", 16},  {dtype::U8, "U8", 8},
    {dtype::BOOL, "BOOL", 8}, {dtype::F8_E4M3, "F8_E4M3", 8}, {dtype::F8_E5M2, "F8_E5M2", 8},
    {dtype::F8_E8M0, "F8_E8M0", 8}, {dtype::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8}, {dtype::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {dtype::F6_E2M3, "F6_E2M3", 6}, {dtype::F6_E3M2, "F6_E3M2", 6}, {dtype::F4, "F4", 4}, {dtype::C64, "C64", 64},
};

inline std::string_view dtype_name(dtype t) { return dtype_table[static_cast<int>(t)].name; }
// Bits per element (4 and 6 for the packed F4 / F6 types).
inline std::size_t dtype_bits(dtype t) { return dtype_table[static_cast<int>(t)].bits; }
// Bytes per element of the byte-sized types (0 for F4 and F6, which pack several per byte).
inline std::size_t dtype_size(dtype t) { return dtype_bits(t) % 8 == 0 ? dtype_bits(t) / 8 : 0; }
// The dtype named exactly `s` (case-sensitive, as the format spells it), if any.
inline std::optional<dtype> parse_dtype(std::string_view s) {
  for (const auto& d : dtype_table)
    if (d.name == s) return d.type;
  return std::nullopt;
}

// "[2, 3]" for error messages.
inline std::string dims_str(const std::vector<index_t>& dims) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < dims.size(); ++i) os << (i ? ", " : "") << dims[i];
  os << ']';
  return os.str();
}

}  // namespace hyena::io
