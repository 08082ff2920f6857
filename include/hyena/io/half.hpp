// io/half.hpp: IEEE fp16 and bfloat16 <-> float conversion on raw 16-bit patterns.
//
// Checkpoints store these types; compute happens in float/double, so only the bit
// conversions are needed. Float -> 16 bit rounds to nearest, ties to even (as PyTorch
// and numpy do), keeps Inf, and turns NaN into a quiet NaN of the same sign.
#pragma once
#include <bit>
#include <cstdint>

namespace hyena::io {

// fp16 (1 sign, 5 exponent, 10 mantissa bits) -> float; exact.
inline float fp16_to_float(std::uint16_t h) {
  std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: man * 2^-24, exact in float.
    float v = static_cast<float>(man) * 0x1p-24f;
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));  // Inf / NaN
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));         // rebias 15 -> 127
}

// float -> fp16, round to nearest even; overflow gives Inf.
inline std::uint16_t float_to_fp16(float f) {
  std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  std::uint32_t sign = (x >> 16) & 0x8000u;
  std::uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {                                    // Inf or NaN
    if (ax == 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7c00u);
    return static_cast<std::uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));  // quiet NaN
  }
  if (ax >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to Inf
  std::uint32_t exp = ax >> 23;
  if (exp < 113) {
    // Result is a subnormal fp16 (or zero): count units of 2^-24.
    if (exp < 102) return static_cast<std::uint16_t>(sign);  // below 2^-25: rounds to zero
    std::uint32_t man = (ax & 0x7fffffu) | 0x800000u;
    std::uint32_t shift = 126 - exp;  // 14..24
    std::uint32_t r = man >> shift;
    std::uint32_t rem = man & ((1u << shift) - 1);
    std::uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;  // may carry into the smallest normal
    return static_cast<std::uint16_t>(sign | r);
  }
  std::uint32_t h = ((exp - 112) << 10) | ((ax & 0x7fffffu) >> 13);
  std::uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry bumps the exponent, still right
  return static_cast<std::uint16_t>(sign | h);
}

// bfloat16 is the top half of a float: widening is exact.
inline float bf16_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

// float -> bfloat16, round to nearest even; overflow gives Inf.
inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(x >> 16);
}

}  // namespace hyena::io
