// cpu/gemm_amx.hpp: the bf16 product on AMX tiles (Intel Sapphire Rapids and later), and
// multiply_rows_bf16, which runs it where it can and gemm_bf16.hpp's vdpbf16ps kernel elsewhere.
//
// AMX adds eight tile registers of up to 16 rows x 64 bytes and tdpbf16ps, which multiplies a
// 16 x 32 tile of bf16 A by a 32 x 16 tile of bf16 B, held as 16 rows of depth pairs (the pairs
// pack_b_pairs writes), into a 16 x 16 fp32 tile of C: 16384 FLOP an instruction. It matters on
// such a Xeon because vdpbf16ps there runs at half the fp32 FMA rate (bench_gemm --peak-only on
// two cores: 243 against 476 GFLOP/s, docs/results.md section 5, run M), so medium precision
// on vdpbf16ps alone would be slower than fp32.
//
// The micro-kernel keeps a 32 x 32 block of C in tiles 0-3 and walks the depth 32 at a time:
// two tiles of A (4, 5: rows 0-15, 16-31), two of B (6, 7: columns 0-15, 16-31), four
// tdpbf16ps. A is packed row-major in bf16, each row's depth pairs padded with zeros to whole
// steps; B is pack_b_pairs's panel, read 64 bytes of its 128-byte rows at a time. Whole tiles
// with alpha 1 are stored straight into C; the others leave through a 4 KB buffer into
// store_tile, the epilogue every kernel shares.
// Like vdpbf16ps, tdpbf16ps rounds nothing but its fp32 sums; unlike it, it flushes denormals
// (Intel's ISA reference), which changes nothing at the tolerances of fp32 sums of bf16 inputs.
//
// Linux grants a process the tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM, asked
// once); where that is refused, or HYENA_AMX=0 is set in the environment, products stay on vdpbf16ps.
#pragma once
#include "gemm_bf16.hpp"

#if HYENA_HAS_BF16_PRODUCT && defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__linux__)
#define HYENA_HAS_AMX 1
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace hyena::backend::gemm_detail {

struct amx_tile {
  static constexpr index_t mr = 32;  // rows of C a micro-tile holds: two tiles of 16
  static constexpr index_t mc = 64;  // rows of A packed at a time (apack_pairs_size's 64)
  static constexpr index_t depth_step = 2 * pair_step;  // depths one tdpbf16ps takes: 32
};
static_assert(tile<float>::nr == 32, "the AMX kernel reads two 16-column tiles of a 32-column panel");
static_assert(amx_tile::mc * tile<float>::kc / 2 <= apack_pairs_size, "apack_pairs_size holds the AMX block");

// Whether this process holds the tile state: asked of Linux once (XFEATURE_XTILEDATA, feature
// 18, through ARCH_REQ_XCOMP_PERM, 0x1023: <asm/prctl.h>), unless HYENA_AMX=0.
inline bool amx_permitted() {
  static const bool granted = [] {
    const char* env = std::getenv("HYENA_AMX");
    if (env && std::strcmp(env, "0") == 0) return false;
    constexpr long req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, req_xcomp_perm, xfeature_xtiledata) == 0;
  }();
  return granted;
}

// A process-wide switch, on by default: tests turn AMX off to check the vdpbf16ps kernel too on
// a machine that has both.
inline std::atomic<bool>& amx_enabled() {
  static std::atomic<bool> on{true};
  return on;
}
inline bool use_amx() { return amx_enabled().load(std::memory_order_relaxed) && amx_permitted(); }

// Palette 1 with all eight tiles 16 rows x 64 bytes (the layout ldtilecfg reads).
struct alignas(64) tile_config {
  std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

// Rows [i_lo, i_hi) x depths [p_lo, p_hi) of op(A) in bf16, row-major: row i's pair q at
// out + (i - i_lo) * ld + q, ld = padded_pairs(p_hi - p_lo), zero past the depth and in the rows
// up to a whole micro-tile. A in rows converts each row as one stream; A transposed (a weight
// gradient's dY^T) converts 16 rows x 32 depths at a time and transposes the 16 x 16 pairs.
inline void pack_a_amx(operand<float> a, index_t i_lo, index_t i_hi, index_t p_lo, index_t p_hi, std::uint32_t* out) {
  const index_t depth = p_hi - p_lo, ld = padded_pairs(depth);
  const index_t padded_rows = (i_hi - i_lo + amx_tile::mr - 1) / amx_tile::mr * amx_tile::mr;
  if (a.cs == 1) {
    for (index_t r = 0; r < padded_rows; ++r)
      pack_row_pairs(i_lo + r < i_hi ? a.data + (i_lo + r) * a.rs + p_lo : nullptr, depth, out + r * ld, ld);
    return;
  }
  alignas(64) std::uint32_t by_pair[16 * 16];  // [pair][row]
  for (index_t r0 = 0; r0 < padded_rows; r0 += 16) {
    const __mmask16 live = first_lanes(i_hi - (i_lo + r0));
    for (index_t q0 = 0; q0 < ld; q0 += 16) {
      for (index_t q = 0; q < 16; ++q) {
        const index_t p = 2 * (q0 + q);
        const float* even = a.data + i_lo + r0 + (p_lo + p) * a.cs;
        const __m512 e = p < depth && live ? _mm512_maskz_loadu_ps(live, even) : _mm512_setzero_ps(),
                     o = p + 1 < depth && live ? _mm512_maskz_loadu_ps(live, even + a.cs) : _mm512_setzero_ps();
        _mm512_store_si512(by_pair + q * 16, interleave_rows16(as_si(_mm512_cvtne2ps_pbh(o, e))));
      }
      // (transpose_block moves 32-bit values; a pair is one)
      transpose_block(reinterpret_cast<const float*>(by_pair), 16, reinterpret_cast<float*>(out + r0 * ld + q0), ld);
    }
  }
}

// C tile (rows x cols <= 32 x 32) = alpha * A_tile * B_panel + beta * C (+ bias) over `steps` AMX
// steps: A's rows at ap + r * lda (units), B's pairs at bp + q * NR. A tile of at most 16 rows
// leaves tiles 2 and 3 out. A whole tile with alpha 1 (the models' products) goes straight
// between C and the tiles: they start from C (beta 1), from the bias (a load with row stride 0
// repeats it down the rows) or from zero, and are stored into C. The rest goes through store_tile.
HYENA_KERNEL_INLINE void micro_tile_amx(index_t steps, const std::uint32_t* ap, index_t lda, const std::uint32_t* bp,
                                        float alpha, float beta, float* c, index_t ldc, index_t rows, index_t cols,
                                        const float* bias) {
  constexpr index_t nr = tile<float>::nr, mr = tile<float>::mr, step = pair_step;
  const long a_stride = static_cast<long>(lda * 4), b_stride = static_cast<long>(nr * 4);  // bytes
  const bool lower = rows > 16;
  const bool direct =
      alpha == 1.0f && cols == nr && rows == (lower ? 32 : 16) && (beta == 0.0f || (beta == 1.0f && !bias));
  const long c_stride = static_cast<long>(ldc * 4), from_bias = 0;
  const index_t low = 16 * ldc;  // C's rows 16-31
  if (direct && beta == 1.0f) {
    _tile_loadd(0, c, c_stride);
    _tile_loadd(1, c + 16, c_stride);
    if (lower) {
      _tile_loadd(2, c + low, c_stride);
      _tile_loadd(3, c + low + 16, c_stride);
    }
  } else if (direct && bias) {
    _tile_loadd(0, bias, from_bias);
    _tile_loadd(1, bias + 16, from_bias);
    if (lower) {
      _tile_loadd(2, bias, from_bias);
      _tile_loadd(3, bias + 16, from_bias);
    }
  } else {
    _tile_zero(0);
    _tile_zero(1);
    if (lower) {
      _tile_zero(2);
      _tile_zero(3);
    }
  }
  for (index_t s = 0; s < steps; ++s) {
    _tile_loadd(6, bp + s * step * nr, b_stride);
    _tile_loadd(7, bp + s * step * nr + 16, b_stride);
    _tile_loadd(4, ap + s * step, a_stride);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if (lower) {
      _tile_loadd(5, ap + 16 * lda + s * step, a_stride);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  if (direct) {
    _tile_stored(0, c, c_stride);
    _tile_stored(1, c + 16, c_stride);
    if (lower) {
      _tile_stored(2, c + low, c_stride);
      _tile_stored(3, c + low + 16, c_stride);
    }
    return;
  }
  alignas(64) float sums[32 * 32];
  _tile_stored(0, sums, b_stride);
  _tile_stored(1, sums + 16, b_stride);
  if (lower) {
    _tile_stored(2, sums + 16 * 32, b_stride);
    _tile_stored(3, sums + 16 * 32 + 16, b_stride);
  }
  using batch = tile<float>::batch;
  for (index_t r0 = 0; r0 < rows; r0 += mr) {
    batch sum0[mr], sum1[mr];
    HYENA_UNROLL_ALL
    for (index_t r = 0; r < mr; ++r)
      sum0[r] = batch::load_aligned(sums + (r0 + r) * 32), sum1[r] = batch::load_aligned(sums + (r0 + r) * 32 + 16);
    store_tile<float>(sum0, sum1, alpha, beta, c + r0 * ldc, ldc, std::min(mr, rows - r0), cols, bias);
  }
}

// multiply_rows_dpbf16 on AMX tiles: the same arguments, packed B and results; apack holds
// apack_pairs_size units. Tiles are 32 x 32 and depths go in whole steps of 32 (walk_tiles
// widens a triangle's range; the padding is zero in both packed operands).
inline void multiply_rows_amx(triangle tri, index_t m_lo, index_t m_hi, index_t n, index_t k, float alpha,
                              operand<float> a, const std::uint32_t* packed, index_t ldp, float beta, float* c,
                              index_t ldc, std::uint32_t* apack, index_t diag, const float* bias) {
  constexpr index_t nr = tile<float>::nr;
  const index_t kp = padded_pairs(ldp);
  index_t lda = 0;  // of the block packed last
  const auto pack_block = [&](index_t ic, index_t ie, index_t pc, index_t pe) {
    lda = padded_pairs(pe - pc);
    if (pe > pc) pack_a_amx(a, ic, ie, pc, pe, apack);
  };
  const auto run_tile = [&](const tile_job& t) {
    const std::uint32_t* bp = packed + (t.jp * kp + t.lo / 2) * nr;
    const std::uint32_t* ap = apack + (t.i0 - t.ic) * lda + (t.lo - t.pc) / 2;
    const float b = t.first ? beta : 1.0f;
    const float* tile_bias = t.first && bias ? bias + t.j0 : nullptr;
    micro_tile_amx((t.hi - t.lo) / amx_tile::depth_step, ap, lda, bp, alpha, b, c + t.i0 * ldc + t.j0, ldc, t.rows,
                   t.cols, tile_bias);
  };
  const tile_config config;
  _tile_loadconfig(&config);  // per thread, and cheap beside a product
  walk_tiles<float, amx_tile::depth_step, amx_tile::mr, amx_tile::mc>(tri, m_lo, m_hi, n, k, diag, pack_block,
                                                                       run_tile);
  _tile_release();  // so that a context switch need not save 8 KB of tiles
}

}  // namespace hyena::backend::gemm_detail
#endif

#if HYENA_HAS_BF16_PRODUCT
namespace hyena::backend::gemm_detail {

// Rows [m_lo, m_hi) of C with bf16 inputs and fp32 sums (multiply_rows_dpbf16's contract): on AMX
// tiles where this build and process have them, otherwise on vdpbf16ps.
inline void multiply_rows_bf16(triangle tri, index_t m_lo, index_t m_hi, index_t n, index_t k, float alpha,
                               operand<float> a, const std::uint32_t* packed, index_t ldp, float beta, float* c,
                               index_t ldc, std::uint32_t* apack, index_t diag = 0, const float* bias = nullptr) {
#if HYENA_HAS_AMX
  if (use_amx()) {
    multiply_rows_amx(tri, m_lo, m_hi, n, k, alpha, a, packed, ldp, beta, c, ldc, apack, diag, bias);
    return;
  }
#endif
  multiply_rows_dpbf16(tri, m_lo, m_hi, n, k, alpha, a, packed, ldp, beta, c, ldc, apack, diag, bias);
}

// Rows of C one micro-tile of multiply_rows_bf16 holds: the unit a caller deals rows to threads in.
inline index_t bf16_tile_rows() {
#if HYENA_HAS_AMX
  if (use_amx()) return amx_tile::mr;
#endif
  return tile<float>::mr;
}

}  // namespace hyena::backend::gemm_detail
#endif
