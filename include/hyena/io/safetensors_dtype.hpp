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

enum class dtype { F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2 };

struct dtype_desc {
  dtype type;
  std::string_view name;
  std::size_t size;
};
inline constexpr dtype_desc dtype_table[] = {
    {dtype::F64, "F64", 8},  {dtype::F32, "F32", 4},   {dtype::F16, "F16", 2},         {dtype::BF16, "BF16", 2},
    {dtype::I64, "I64", 8},  {dtype::I32, "I32", 4},   {dtype::I16, "I16", 2},         {dtype::I8, "I8", 1},
    {dtype::U64, "U64", 8},  {dtype::U32, "U32", 4},   {dtype::U16, "U16", 2},         {dtype::U8, "U8", 1},
    {dtype::BOOL, "BOOL", 1}, {dtype::F8_E4M3, "F8_E4M3", 1}, {dtype::F8_E5M2, "F8_E5M2", 1},
};

inline std::string_view dtype_name(dtype t) { return dtype_table[static_cast<int>(t)].name; }
inline std::size_t dtype_size(dtype t) { return dtype_table[static_cast<int>(t)].size; }
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
