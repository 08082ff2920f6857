// cpu/gemm_bf16.hpp: the matrix product with bfloat16 inputs and fp32 sums (AVX512-BF16).
//
// What host_context's matmul_precision::medium selects (PyTorch's
// torch.set_float32_matmul_precision("medium")): an fp32 product whose inputs are rounded to
// bfloat16 (8 significant bits, round to nearest even) and whose products are summed in fp32.
// vdpbf16ps multiplies two pairs of bf16 values per fp32 lane and adds both to the lane: four
// FLOP a lane where an fp32 FMA does two, so twice the FMA peak (Zen 4, two cores: 462 against
// 232 GFLOP/s; docs/results.md section 5, run L).
//
// The layout is gemm_kernel.hpp's (B in panels of NR columns, A in micro-panels of MR rows, an
// MR x NR tile of C in registers) with the depth taken in pairs: one 32-bit unit holds
// (x[p], x[p + 1]) for even p, the low half first, the pair vdpbf16ps reads. A depth that is odd
// is padded with a zero. Only compiled where the compiler targets AVX512-BF16 (-march=native on
// Zen 4, Cooper Lake, Sapphire Rapids and later); elsewhere products stay in fp32. Where the CPU
// also has AMX (Sapphire Rapids and later), gemm_amx.hpp's kernel runs instead, on the same packed B.
#pragma once
#include <type_traits>

#include "../context.hpp"
#include "gemm_kernel.hpp"

namespace hyena::backend::gemm_detail {

// A packed panel of B holds ceil(k / 2) depth pairs and then zeros up to a whole number of AMX
// steps (16 pairs, 32 depths: gemm_amx.hpp), so both kernels read the same packed B.
inline constexpr index_t pair_step = 16;
inline constexpr index_t padded_pairs(index_t k) { return ((k + 1) / 2 + pair_step - 1) / pair_step * pair_step; }
// Units the packed pairs of a (k x n) op(B) take.
inline index_t packed_pairs_size(index_t k, index_t n) {
  return (n + tile<float>::nr - 1) / tile<float>::nr * tile<float>::nr * padded_pairs(k);
}
// Units a block of A packed by either kernel takes: up to 64 rows (the AMX kernel's MC) of KC depths.
inline constexpr index_t apack_pairs_size = 64 * tile<float>::kc / 2;

}  // namespace hyena::backend::gemm_detail

#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define HYENA_HAS_BF16_PRODUCT 1
#include <cstdint>

#include "../triangle.hpp"

namespace hyena::backend::gemm_detail {

static_assert(tile<float>::w == 16 && tile<float>::mr == 8, "the bf16 kernel assumes AVX-512's 8 x 32 tile");

// Bit patterns as the other vector types (GCC and Clang allow casts between vectors of one size).
inline __m512bh as_bh(__m512i x) { return (__m512bh)x; }
inline __m512i as_si(__m512bh x) { return (__m512i)x; }
inline __m256i as_si(__m256bh x) { return (__m256i)x; }

// Interleaves two rows of 16 bf16 values held as one vector (row 0 in elements 0..15, row 1 in
// 16..31) into 16 (row 0, row 1) pairs; the 8-value form for two rows of 8.
inline __m512i interleave_rows16(__m512i x) {
  alignas(64) static constexpr std::int16_t order[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                         8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  return _mm512_permutexvar_epi16(_mm512_load_si512(order), x);
}
inline __m256i interleave_rows8(__m256i x) {
  alignas(32) static constexpr std::int16_t order[16] = {0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15};
  return _mm256_permutexvar_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(order)), x);
}

// A mask of the first n of 16 lanes (none for n <= 0, all for n >= 16): the loads of a row's tail.
inline __mmask16 first_lanes(index_t n) {
  return static_cast<__mmask16>(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1);
}

// Panels [lo, hi) of op(B) (k x n) as depth pairs, straight from B: panel jp's pair q is NR units
// at out + (jp * kp + q) * NR, kp = padded_pairs(k), zero past column n and past depth k.
// B in rows (the activations of a weight gradient, a weight in an input gradient) converts two
// rows at a time and interleaves them. B transposed (W^T in a layer's forward, the keys in
// attention) has each column's depths contiguous: 16 columns x 32 depths convert as they lie,
// and a 16 x 16 transpose of the pairs puts them in panel order.
inline void pack_b_pairs(operand<float> b, index_t k, index_t n, index_t lo, index_t hi, std::uint32_t* out) {
  constexpr index_t nr = tile<float>::nr;
  const index_t kp = padded_pairs(k), live = (k + 1) / 2;
  for (index_t jp = lo; jp < hi; ++jp) {
    std::uint32_t* dst = out + jp * kp * nr;
    const index_t j0 = jp * nr, cols = std::min(nr, n - j0);
    if (b.cs == 1) {
      for (index_t q = 0; q < live; ++q) {
        const float* even = b.data + 2 * q * b.rs + j0;
        const bool has_odd = 2 * q + 1 < k;
        for (index_t h = 0; h < nr; h += 16) {
          const __mmask16 m = first_lanes(cols - h);
          const __m512 e = _mm512_maskz_loadu_ps(m, even + h),
                       o = has_odd ? _mm512_maskz_loadu_ps(m, even + b.rs + h) : _mm512_setzero_ps();
          _mm512_store_si512(dst + q * nr + h, interleave_rows16(as_si(_mm512_cvtne2ps_pbh(o, e))));
        }
      }
    } else {
      alignas(64) std::uint32_t by_column[16 * 16];  // [column][pair]
      for (index_t h = 0; h < nr; h += 16)
        for (index_t q0 = 0; q0 < live; q0 += 16) {
          for (index_t c = 0; c < 16; ++c) {
            __m512i units = _mm512_setzero_si512();
            if (h + c < cols) {
              const float* src = b.data + (j0 + h + c) * b.cs + 2 * q0;  // (b.rs == 1)
              const __m512 x0 = _mm512_maskz_loadu_ps(first_lanes(k - 2 * q0), src),
                           x1 = _mm512_maskz_loadu_ps(first_lanes(k - 2 * q0 - 16), src + 16);
              units = as_si(_mm512_cvtne2ps_pbh(x1, x0));
            }
            _mm512_store_si512(by_column + c * 16, units);
          }
          // (transpose_block moves 32-bit values; a pair is one)
          transpose_block(reinterpret_cast<const float*>(by_column), 16, reinterpret_cast<float*>(dst + q0 * nr + h), nr);
        }
    }
    std::fill(dst + live * nr, dst + kp * nr, 0u);
  }
}

// One row of A as bf16 depth pairs: `units` pairs at row (units >= ceil(depth / 2)) from `depth`
// contiguous values at src, zero past them; all zero where src is null (a row of padding).
HYENA_KERNEL_INLINE void pack_row_pairs(const float* src, index_t depth, std::uint32_t* row, index_t units) {
  if (!src) {
    std::fill(row, row + units, 0u);
    return;
  }
  for (index_t q = 0; q < units; q += 16) {  // 32 depths: one vector of 16 pairs
    const index_t left = depth - 2 * q;
    const __m512 x0 = _mm512_maskz_loadu_ps(first_lanes(left), src + 2 * q),
                 x1 = _mm512_maskz_loadu_ps(first_lanes(left - 16), src + 2 * q + 16);
    _mm512_mask_storeu_epi32(row + q, first_lanes(units - q), as_si(_mm512_cvtne2ps_pbh(x1, x0)));
  }
}

// Rows [i_lo, i_hi) x depths [p_lo, p_hi) of op(A) as micro-panels of MR rows, dp = ceil(depth / 2)
// pairs each, panel at out + (i0 - i_lo) / MR * MR * dp. A in rows (depth contiguous, a.cs == 1)
// keeps that order: row r's pair q at r * dp + q, each row converted as one stream. A transposed
// (a.rs == 1: the MR rows of one depth contiguous) is packed pair-major: (q, r) at q * MR + r.
// Rows past i_hi are zero.
inline void pack_a_bf16(operand<float> a, index_t i_lo, index_t i_hi, index_t p_lo, index_t p_hi, std::uint32_t* out) {
  constexpr index_t mr = tile<float>::mr;
  const index_t depth = p_hi - p_lo, dp = (depth + 1) / 2;
  for (index_t i0 = i_lo; i0 < i_hi; i0 += mr) {
    std::uint32_t* dst = out + (i0 - i_lo) / mr * mr * dp;
    const index_t rows = std::min(mr, i_hi - i0);
    if (a.cs == 1) {
      for (index_t r = 0; r < mr; ++r)
        pack_row_pairs(r < rows ? a.data + (i0 + r) * a.rs + p_lo : nullptr, depth, dst + r * dp, dp);
    } else {
      const __mmask8 live = static_cast<__mmask8>((1u << rows) - 1);
      for (index_t q = 0; q < dp; ++q) {
        const float* even = a.data + i0 + (p_lo + 2 * q) * a.cs;
        const __m256 e = _mm256_maskz_loadu_ps(live, even),
                     o = 2 * q + 1 < depth ? _mm256_maskz_loadu_ps(live, even + a.cs) : _mm256_setzero_ps();
        const __m512 both = _mm512_insertf32x8(_mm512_castps256_ps512(e), o, 1);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + q * mr), interleave_rows8(as_si(_mm512_cvtneps_pbh(both))));
      }
    }
  }
}

// C tile (rows x cols <= MR x NR) = alpha * A_tile * B_panel + beta * C (+ bias) over `pairs`
// depth pairs: A's unit (r, q) at ap[r * rs + q * cs] (pack_a_bf16's two layouts; the flag
// makes the contiguous stride a constant), B's pair q at bp + q * NR. One broadcast of A's pair
// per row and two loads of B per pair, as micro_tile.
template <bool DEPTH_CONTIGUOUS>
HYENA_KERNEL_INLINE void micro_tile_bf16(index_t pairs, const std::uint32_t* ap, index_t rs, index_t cs,
                                         const std::uint32_t* bp, float alpha, float beta, float* c, index_t ldc,
                                         index_t rows, index_t cols, const float* bias) {
  using batch = tile<float>::batch;
  constexpr index_t mr = tile<float>::mr, nr = tile<float>::nr;
  __m512 acc0[mr], acc1[mr];
  HYENA_UNROLL_ALL
  for (index_t r = 0; r < mr; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  HYENA_UNROLL_DEPTH
  for (index_t q = 0; q < pairs; ++q) {
    const __m512bh b0 = as_bh(_mm512_load_si512(bp + q * nr)), b1 = as_bh(_mm512_load_si512(bp + q * nr + 16));
    HYENA_UNROLL_ALL
    for (index_t r = 0; r < mr; ++r) {
      const __m512bh av = as_bh(_mm512_set1_epi32(static_cast<int>(DEPTH_CONTIGUOUS ? ap[r * rs + q] : ap[r + q * cs])));
      acc0[r] = _mm512_dpbf16_ps(acc0[r], av, b0);
      acc1[r] = _mm512_dpbf16_ps(acc1[r], av, b1);
    }
  }
  batch sum0[mr], sum1[mr];
  HYENA_UNROLL_ALL
  for (index_t r = 0; r < mr; ++r) sum0[r] = batch(acc0[r]), sum1[r] = batch(acc1[r]);
  store_tile<float>(sum0, sum1, alpha, beta, c, ldc, rows, cols, bias);
}

// Rows [m_lo, m_hi) of C = alpha * op(A) * op(B) + beta * C (+ bias, n values or null), as
// multiply_rows (gemm_kernel.hpp), the triangle hints and the shifted diagonal included: op(B)
// (k x n) packed by pack_b_pairs as panels ldp >= k deep (their first k rows used), A packed here
// one MC x KC block at a time into apack (apack_pairs_size units). walk_tiles widens a triangle's
// depth range to whole pairs. The vdpbf16ps kernel; multiply_rows_bf16 (gemm_amx.hpp) picks it
// where AMX cannot run.
inline void multiply_rows_dpbf16(triangle tri, index_t m_lo, index_t m_hi, index_t n, index_t k, float alpha,
                                 operand<float> a, const std::uint32_t* packed, index_t ldp, float beta, float* c,
                                 index_t ldc, std::uint32_t* apack, index_t diag, const float* bias) {
  constexpr index_t nr = tile<float>::nr, mr = tile<float>::mr;
  const index_t kp = padded_pairs(ldp);
  const auto pack_block = [&](index_t ic, index_t ie, index_t pc, index_t pe) {
    if (pe > pc) pack_a_bf16(a, ic, ie, pc, pe, apack);
  };
  const auto run_tile = [&](const tile_job& t) {
    const index_t dp = (t.pe - t.pc + 1) / 2, q0 = (t.lo - t.pc) / 2, pairs = (t.hi - t.lo) / 2;
    const std::uint32_t* bp = packed + (t.jp * kp + t.lo / 2) * nr;
    const std::uint32_t* ap = apack + (t.i0 - t.ic) / mr * mr * dp;
    const float b = t.first ? beta : 1.0f;
    const float* tile_bias = t.first && bias ? bias + t.j0 : nullptr;
    float* ct = c + t.i0 * ldc + t.j0;
    if (t.first) prefetch_next_c_tile<float>(t, c, ldc, n, m_hi);
    if (a.cs == 1) micro_tile_bf16<true>(pairs, ap + q0, dp, 1, bp, alpha, b, ct, ldc, t.rows, t.cols, tile_bias);
    else micro_tile_bf16<false>(pairs, ap + q0 * mr, 1, mr, bp, alpha, b, ct, ldc, t.rows, t.cols, tile_bias);
  };
  walk_tiles<float, 2>(tri, m_lo, m_hi, n, k, diag, pack_block, run_tile);
}

}  // namespace hyena::backend::gemm_detail
#endif

namespace hyena::backend {

// Whether ctx's products of T take bf16 inputs: matmul_precision::medium, T float, and a build
// with this file's kernel. gemm.hpp and fused_attention.hpp dispatch on it.
template <class T>
bool bf16_products(const host_context& ctx) {
#if HYENA_HAS_BF16_PRODUCT
  return std::is_same_v<T, float> && ctx.float32_matmul_precision() == matmul_precision::medium;
#else
  (void)ctx;
  return false;
#endif
}

}  // namespace hyena::backend
