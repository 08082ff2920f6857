// cpu/gemm_kernel.hpp: a blocked, register-tiled matrix product on one thread.
//
// After BLIS: B, the small operand (weights, or a head's keys), is copied once per product
// into panels of NR columns the micro-kernel reads as one contiguous stream; A is read in
// place or copied an L1-sized block (mc x kc) at a time. The micro-kernel
// keeps an MR x NR tile of C in registers (MR rows, two SIMD vectors each) and runs over the
// depth with one broadcast of A per row and one load of B per vector: FMA-bound, not
// load-bound. Measured: 80-90% of the FMA peak on the models' shapes (docs/results.md).
#pragma once
#include <algorithm>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "../../config.hpp"
#include "../triangle.hpp"

// GCC's unroll hint (the kernel's loops over rows must become straight-line code so the
// accumulators stay in registers); nvcc, which sees these headers in the CUDA tests, has no such pragma.
#if defined(__CUDACC__)
#define HYENA_UNROLL_ALL
#define HYENA_UNROLL_DEPTH
#else
#define HYENA_UNROLL_ALL _Pragma("GCC unroll 16")
#define HYENA_UNROLL_DEPTH _Pragma("GCC unroll 8")
#endif

// A micro-kernel and its epilogue must be inlined into the loop over tiles: as a call, the
// accumulators go through memory and every call pays for the vector state's switch (a perf
// profile of `bench_train --matmul-precision medium` had 5% of the step in store_tile's calls).
#if defined(__GNUC__) && !defined(__CUDACC__)
#define HYENA_KERNEL_INLINE [[gnu::always_inline]] inline
#else
#define HYENA_KERNEL_INLINE inline
#endif

namespace hyena::backend::gemm_detail {

template <class T>
struct tile {
  using batch = xsimd::batch<T>;
  static constexpr index_t w = static_cast<index_t>(batch::size);
  static constexpr index_t nr = 2 * w;                // columns of a C tile: two vectors
  static constexpr index_t mr = w >= 16 ? 8 : 6;      // rows: 2*mr accumulators fit the register file
  static constexpr index_t kc = 256;                  // depth of one pass over a panel
  static constexpr index_t mc = 4 * mr;              // rows of A per pass over the panels (an L1-sized block)
};

template <class T>
using aligned_vector = std::vector<T, xsimd::aligned_allocator<T, 64>>;

// op(X)[i][p] = data[i * rs + p * cs]: a plain or transposed row-major matrix.
template <class T>
struct operand {
  const T* data;
  index_t rs, cs;
  static operand of(const T* x, index_t ld, bool trans) { return trans ? operand{x, 1, ld} : operand{x, ld, 1}; }
};

// Floats the packed form of a (k x n) op(B) takes.
template <class T>
index_t packed_size(index_t k, index_t n) {
  return (n + tile<T>::nr - 1) / tile<T>::nr * tile<T>::nr * k;
}

// A W x W block of floats transposed in registers (W = the float vector width): rows
// src + i * lds (W values each) become columns of dst (row stride ldd). pack_b uses it for a
// transposed op(B), such as the weight W^T of a linear layer's forward, whose panel columns
// are rows of W: a scalar copy would store one value at a time, each to a new cache line.
#if defined(__AVX512F__)
inline constexpr index_t transpose_width = 16;
// The zero-masked forms with every lane kept: GCC 12's unmasked ones start from
// _mm512_undefined_ps, which -Wuninitialized reports wherever they are inlined.
inline constexpr __mmask16 all16 = 0xFFFF;
inline constexpr __mmask8 all8 = 0xFF;
template <int imm>
inline __m512 shuffle_lanes(__m512 a, __m512 b) { return _mm512_maskz_shuffle_f32x4(all16, a, b, imm); }
inline void transpose_block(const float* src, index_t lds, float* dst, index_t ldd) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {  // pairs of rows interleaved: (i, i+1) at depths 4L + {0,1} | {2,3}
    const __m512 x = _mm512_loadu_ps(src + i * lds), y = _mm512_loadu_ps(src + (i + 1) * lds);
    t[i] = _mm512_maskz_unpacklo_ps(all16, x, y);
    t[i + 1] = _mm512_maskz_unpackhi_ps(all16, x, y);
  }
  for (int i = 0; i < 16; i += 4) {  // u[i + q], 128-bit lane L: depth 4L + q of rows i..i+3
    const __m512d a0 = _mm512_castps_pd(t[i]), a1 = _mm512_castps_pd(t[i + 1]), b0 = _mm512_castps_pd(t[i + 2]),
                  b1 = _mm512_castps_pd(t[i + 3]);
    u[i] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, a0, b0));
    u[i + 1] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, a0, b0));
    u[i + 2] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, a1, b1));
    u[i + 3] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, a1, b1));
  }
  for (int q = 0; q < 4; ++q) {  // depth 4L + q: lane L of u[q], u[4 + q], u[8 + q], u[12 + q]
    const __m512 even0 = shuffle_lanes<0x88>(u[q], u[4 + q]), odd0 = shuffle_lanes<0xDD>(u[q], u[4 + q]);
    const __m512 even1 = shuffle_lanes<0x88>(u[8 + q], u[12 + q]),
                 odd1 = shuffle_lanes<0xDD>(u[8 + q], u[12 + q]);
    _mm512_storeu_ps(dst + (0 + q) * ldd, shuffle_lanes<0x88>(even0, even1));
    _mm512_storeu_ps(dst + (8 + q) * ldd, shuffle_lanes<0xDD>(even0, even1));
    _mm512_storeu_ps(dst + (4 + q) * ldd, shuffle_lanes<0x88>(odd0, odd1));
    _mm512_storeu_ps(dst + (12 + q) * ldd, shuffle_lanes<0xDD>(odd0, odd1));
  }
}
#elif defined(__AVX__)
inline constexpr index_t transpose_width = 8;
inline void transpose_block(const float* src, index_t lds, float* dst, index_t ldd) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    const __m256 x = _mm256_loadu_ps(src + i * lds), y = _mm256_loadu_ps(src + (i + 1) * lds);
    t[i] = _mm256_unpacklo_ps(x, y);
    t[i + 1] = _mm256_unpackhi_ps(x, y);
  }
  for (int i = 0; i < 8; i += 4) {  // u[i + q], 128-bit lane L: depth 4L + q of rows i..i+3
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {
    _mm256_storeu_ps(dst + q * ldd, _mm256_permute2f128_ps(u[q], u[4 + q], 0x20));
    _mm256_storeu_ps(dst + (4 + q) * ldd, _mm256_permute2f128_ps(u[q], u[4 + q], 0x31));
  }
}
#else
inline constexpr index_t transpose_width = 0;  // no vector transpose: pack_b copies one value at a time
#endif

// Whether pack_b transposes whole blocks for T (a panel is a whole number of blocks wide).
template <class T>
constexpr bool fast_transpose() {
  if constexpr (!std::is_same_v<T, float> || transpose_width == 0) return false;
  else return tile<T>::nr % transpose_width == 0;
}

// Packs panels [lo, hi) of op(B) (k x n): panel jp holds columns jp*NR.. as k rows of NR
// values (zero past column n), at out + jp * k * NR.
template <class T>
void pack_b(operand<T> b, index_t k, index_t n, index_t lo, index_t hi, T* out) {
  constexpr index_t nr = tile<T>::nr;
  for (index_t jp = lo; jp < hi; ++jp) {
    T* dst = out + jp * k * nr;
    const index_t j0 = jp * nr, cols = std::min(nr, n - j0);
    if (b.cs == 1 && cols == nr) {  // rows of B are contiguous: two vectors at a time
      using batch = typename tile<T>::batch;
      constexpr index_t w = tile<T>::w;
      for (index_t p = 0; p < k; ++p) {
        const T* src = b.data + p * b.rs + j0;
        batch::load_unaligned(src).store_aligned(dst + p * nr);
        batch::load_unaligned(src + w).store_aligned(dst + p * nr + w);
      }
    } else if (b.cs == 1) {
      for (index_t p = 0; p < k; ++p) {
        const T* src = b.data + p * b.rs + j0;
        for (index_t j = 0; j < nr; ++j) dst[p * nr + j] = j < cols ? src[j] : T(0);
      }
    } else {  // columns are (B transposed): read each along p
      index_t p_done = 0;  // depths already packed by whole transposed blocks
      if constexpr (fast_transpose<T>()) {
        if (b.rs == 1 && cols == nr) {
          for (; p_done + transpose_width <= k; p_done += transpose_width)
            for (index_t h = 0; h < nr; h += transpose_width)
              transpose_block(b.data + (j0 + h) * b.cs + p_done, b.cs, dst + p_done * nr + h, nr);
        }
      }
      for (index_t j = 0; j < nr; ++j) {
        if (j < cols) {
          const T* src = b.data + (j0 + j) * b.cs;
          for (index_t p = p_done; p < k; ++p) dst[p * nr + j] = src[p * b.rs];
        } else {
          for (index_t p = p_done; p < k; ++p) dst[p * nr + j] = T(0);
        }
      }
    }
  }
}

#if defined(__AVX__)
// Row-major A's fast packing with AVX (MR = 6, 8 floats a vector): eight depths of six rows,
// row r at row[r][0..8), into the packed order dst[p * 6 + r]. A 6 x 8 transpose in
// registers: interleave pairs of rows, then move the (row pair, depth) 64-bit units into
// place; six loads, eighteen shuffles and six stores for 48 values instead of 48 scalar moves.
inline void pack_rows_6x8(const float* const row[6], index_t p, float* dst) {
  const auto pairs = [&](int r, __m256d& lo, __m256d& hi) {
    const __m256 x = _mm256_loadu_ps(row[r] + p), y = _mm256_loadu_ps(row[r + 1] + p);
    lo = _mm256_castps_pd(_mm256_unpacklo_ps(x, y));  // (r, r+1) at depths 0 1 | 4 5
    hi = _mm256_castps_pd(_mm256_unpackhi_ps(x, y));  // (r, r+1) at depths 2 3 | 6 7
  };
  __m256d a0, a1, b0, b1, c0, c1;  // rows (0,1), (2,3), (4,5)
  pairs(0, a0, a1), pairs(2, b0, b1), pairs(4, c0, c1);
  // Within each 128-bit half: the units in output order, two at a time.
  const __m256d x = _mm256_shuffle_pd(a0, b0, 0b0000), y = _mm256_shuffle_pd(c0, a0, 0b1010),
                z = _mm256_shuffle_pd(b0, c0, 0b1111), u = _mm256_shuffle_pd(a1, b1, 0b0000),
                v = _mm256_shuffle_pd(c1, a1, 0b1010), w = _mm256_shuffle_pd(b1, c1, 0b1111);
  const __m256d out[6] = {_mm256_permute2f128_pd(x, y, 0x20), _mm256_permute2f128_pd(z, u, 0x20),
                          _mm256_permute2f128_pd(v, w, 0x20), _mm256_permute2f128_pd(x, y, 0x31),
                          _mm256_permute2f128_pd(z, u, 0x31), _mm256_permute2f128_pd(v, w, 0x31)};
  for (int i = 0; i < 6; ++i) _mm256_storeu_pd(reinterpret_cast<double*>(dst + 8 * i), out[i]);
}
#endif

// Whether row-major A (depth contiguous) has the fast packing above. Without it, such an A is
// read in place by the kernel, as MR row streams.
template <class T>
constexpr bool fast_row_pack() {
#if defined(__AVX__)
  return std::is_same_v<T, float> && tile<T>::mr == 6 && tile<T>::w == 8;
#else
  return false;
#endif
}

// Packs rows [i_lo, i_hi) x depth [p_lo, p_hi) of op(A) as micro-panels of MR rows: panel q
// holds depth p's MR values at out + q * MR * depth + p * MR (rows past i_hi are zero), so
// the kernel reads A as one contiguous stream whatever A's layout.
template <class T>
void pack_a(operand<T> a, index_t i_lo, index_t i_hi, index_t p_lo, index_t p_hi, T* out) {
  constexpr index_t mr = tile<T>::mr;
  const index_t depth = p_hi - p_lo;
  for (index_t i0 = i_lo; i0 < i_hi; i0 += mr) {
    T* dst = out + (i0 - i_lo) / mr * mr * depth;
    const index_t rows = std::min(mr, i_hi - i0);
    if (a.rs == 1 && rows == mr) {  // A transposed: MR rows of one depth are contiguous
      for (index_t p = 0; p < depth; ++p) {
        const T* src = a.data + i0 + (p_lo + p) * a.cs;
        HYENA_UNROLL_ALL
        for (index_t r = 0; r < mr; ++r) dst[p * mr + r] = src[r];  // a fixed-size loop, not a memmove call
      }
      continue;
    }
    index_t p_done = 0;  // depths already packed by the vector path
#if defined(__AVX__)
    if constexpr (fast_row_pack<T>()) {
      if (a.cs == 1 && rows == mr) {
        const T* row[mr];
        for (index_t r = 0; r < mr; ++r) row[r] = a.data + (i0 + r) * a.rs + p_lo;
        for (; p_done + 8 <= depth; p_done += 8) pack_rows_6x8(row, p_done, dst + p_done * mr);
      }
    }
#endif
    for (index_t r = 0; r < mr; ++r) {
      if (r < rows) {
        const T* src = a.data + (i0 + r) * a.rs + p_lo * a.cs;
        for (index_t p = p_done; p < depth; ++p) dst[p * mr + r] = src[p * a.cs];
      } else {
        for (index_t p = p_done; p < depth; ++p) dst[p * mr + r] = T(0);
      }
    }
  }
}

// C tile (rows x cols <= MR x NR) = alpha * (the MR x NR sums acc0 | acc1) + beta * C (+ bias): the
// epilogue of every micro-kernel (micro_tile here, micro_tile_bf16 in gemm_bf16.hpp). With beta == 0,
// C is not read; `bias`, when not null, holds the tile's `cols` column biases.
template <class T>
HYENA_KERNEL_INLINE void store_tile(const typename tile<T>::batch* acc0, const typename tile<T>::batch* acc1,
                                    T alpha, T beta, T* c, index_t ldc, index_t rows, index_t cols, const T* bias) {
  using batch = typename tile<T>::batch;
  constexpr index_t w = tile<T>::w, nr = tile<T>::nr, mr = tile<T>::mr;
  const batch va(alpha), vb(beta);
  if (rows == mr && cols == nr) {
    const batch bias0 = bias ? batch::load_unaligned(bias) : batch(T(0)),
                bias1 = bias ? batch::load_unaligned(bias + w) : batch(T(0));
    HYENA_UNROLL_ALL
    for (index_t r = 0; r < mr; ++r) {
      T* cr = c + r * ldc;
      batch y0 = xsimd::fma(acc0[r], va, bias0), y1 = xsimd::fma(acc1[r], va, bias1);
      if (beta != T(0)) {
        y0 = xsimd::fma(vb, batch::load_unaligned(cr), y0);
        y1 = xsimd::fma(vb, batch::load_unaligned(cr + w), y1);
      }
      y0.store_unaligned(cr);
      y1.store_unaligned(cr + w);
    }
    return;
  }
  alignas(64) T out[mr * nr];
  for (index_t r = 0; r < mr; ++r) {
    (acc0[r] * va).store_aligned(out + r * nr);
    (acc1[r] * va).store_aligned(out + r * nr + w);
  }
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) {
      T& y = c[r * ldc + j];
      const T v = bias ? out[r * nr + j] + bias[j] : out[r * nr + j];
      y = beta == T(0) ? v : v + beta * y;
    }
}

// C tile (rows x cols <= MR x NR) = alpha * A_tile * B_panel + beta * C (+ bias) over depth
// kc, B packed. A_tile row r, depth p is ap[r * rs + p * cs]: a packed micro-panel (rs = 1,
// cs = MR) or A in place (one of the strides 1: the template flag makes it a constant).
// With beta == 0, C is not read. `bias`, when not null, holds the tile's `cols` column biases,
// added to every row (a linear layer's bias, added here while the tile is in registers
// instead of in a second pass over C).
template <class T, bool DEPTH_CONTIGUOUS>
inline void micro_tile(index_t kc, const T* ap, index_t rs, index_t cs, const T* bp, T alpha, T beta, T* c,
                       index_t ldc, index_t rows, index_t cols, const T* bias = nullptr) {
  using batch = typename tile<T>::batch;
  constexpr index_t w = tile<T>::w, nr = tile<T>::nr, mr = tile<T>::mr;
  batch acc0[mr], acc1[mr];
  HYENA_UNROLL_ALL
  for (index_t r = 0; r < mr; ++r) acc0[r] = acc1[r] = batch(T(0));
  // Unrolled over the depth: otherwise the loop's own counter and branch take a share of the
  // FMA rate (docs/results.md section 5, "Kept (2026-12-01)").
  HYENA_UNROLL_DEPTH
  for (index_t p = 0; p < kc; ++p) {
    const batch b0 = batch::load_aligned(bp + p * nr), b1 = batch::load_aligned(bp + p * nr + w);
    HYENA_UNROLL_ALL
    for (index_t r = 0; r < mr; ++r) {
      const batch av(DEPTH_CONTIGUOUS ? ap[r * rs + p] : ap[r + p * cs]);
      acc0[r] = xsimd::fma(av, b0, acc0[r]);
      acc1[r] = xsimd::fma(av, b1, acc1[r]);
    }
  }
  store_tile<T>(acc0, acc1, alpha, beta, c, ldc, rows, cols, bias);
}

// The depth range [lo, hi) a tile of rows [i0, i0 + rows) needs, given the triangle, whose
// diagonal is shifted by `diag` (entry (i, p) is on or below it when p <= i + diag).
inline void tile_depth(triangle tri, index_t diag, index_t i0, index_t rows, index_t k, index_t& lo, index_t& hi) {
  lo = 0, hi = k;
  if (tri == triangle::a_lower) hi = std::clamp<index_t>(i0 + rows + diag, 0, k);
  if (tri == triangle::a_upper) lo = std::clamp<index_t>(i0 + diag, 0, k);
}

// One tile's work in walk_tiles: rows [i0, i0 + rows) x columns [j0, j0 + cols) of C (panel jp), over
// depths [lo, hi) of the depth block [pc, pe), inside the block of rows starting at ic; `first`:
// the first pass to touch the tile, which applies beta and the bias (later ones accumulate).
struct tile_job {
  index_t ic, pc, pe, i0, rows, jp, j0, cols, lo, hi;
  bool first;
};

// Asks for the cache lines of the C tile that walk_tiles reaches MC / MR tiles after tile t: the
// same rows in the next panel, or after the last panel, the first panel of the next block of
// rows. A product's output is mostly a buffer nothing has touched since the previous step, in no
// cache; without this each tile's store waits for its lines to arrive. With it the bf16 training
// steps ran about 10% faster (docs/results.md section 5, run O). A prefetch never faults; the
// addresses stay inside C all the same.
template <class T, index_t MC = tile<T>::mc>
HYENA_KERNEL_INLINE void prefetch_next_c_tile(const tile_job& t, T* c, index_t ldc, index_t n, index_t m_hi) {
  constexpr index_t nr = tile<T>::nr, line = 64 / static_cast<index_t>(sizeof(T));
  index_t i0 = t.i0, j0 = t.j0 + nr;
  if (j0 >= n) i0 += MC, j0 = 0;
  const index_t rows = std::min(t.rows, m_hi - i0), j_end = std::min(n, j0 + nr);
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = j0; j < j_end; j += line) __builtin_prefetch(c + (i0 + r) * ldc + j, 1, 3);
}

// The loops of a product over rows [m_lo, m_hi) of C (m x n, depth k), shared by multiply_rows and
// multiply_rows_bf16: depth blocks of KC, blocks of MC rows (pack_block(ic, ie, pc, pe) is called
// once for each), panels of NR columns, tiles of MR rows (run_tile(tile_job) for each with work).
// Under a triangle hint (diagonal shifted by `diag`) tiles wholly above a c_lower diagonal are
// skipped and each tile's depth is cut to where op(A) is not zero, widened to whole GRAINs
// (the bf16 kernels' pairs or AMX steps: the extra depth is zero by the hint, or past k where
// packing put zeros). MR and MC are the AMX kernel's where it runs (gemm_amx.hpp).
template <class T, index_t GRAIN, index_t MR = tile<T>::mr, index_t MC = tile<T>::mc, class PackBlock, class RunTile>
HYENA_KERNEL_INLINE void walk_tiles(triangle tri, index_t m_lo, index_t m_hi, index_t n, index_t k, index_t diag,
                                    PackBlock&& pack_block, RunTile&& run_tile) {
  constexpr index_t nr = tile<T>::nr, mr = MR, kc = tile<T>::kc, mc = MC;
  static_assert(mc % mr == 0, "blocks of rows must hold whole tiles");
  static_assert(kc % GRAIN == 0, "depth blocks must hold whole grains");
  const auto grain_up = [](index_t p) { return (p + GRAIN - 1) / GRAIN * GRAIN; };
  const index_t panels = (n + nr - 1) / nr;
  for (index_t pc = 0; pc < std::max<index_t>(k, 1); pc += kc) {
    const index_t pe = std::min(k, pc + kc);
    for (index_t ic = m_lo; ic < m_hi; ic += mc) {
      const index_t ie = std::min(m_hi, ic + mc);
      pack_block(ic, ie, pc, pe);
      for (index_t jp = 0; jp < panels; ++jp) {
        const index_t j0 = jp * nr, cols = std::min(nr, n - j0);
        for (index_t i0 = ic; i0 < ie; i0 += mr) {
          const index_t rows = std::min(mr, ie - i0);
          if (tri == triangle::c_lower && j0 > i0 + rows - 1 + diag) continue;  // wholly above the diagonal
          index_t klo, khi;
          tile_depth(tri, diag, i0, rows, k, klo, khi);
          klo -= klo % GRAIN, khi = std::min(grain_up(khi), grain_up(k));
          const bool first = klo < khi ? (pc <= klo && klo < pe) : pc == 0;
          const index_t lo = std::max(klo, pc), hi = std::max(lo, std::min(khi, grain_up(pe)));
          if (!first && hi == lo) continue;
          run_tile(tile_job{ic, pc, pe, i0, rows, jp, j0, cols, lo, hi, first});
        }
      }
    }
  }
}

// Rows [m_lo, m_hi) of C = alpha * op(A) * op(B) + beta * C, op(B) packed by pack_b (all
// panels, packed with depth ldp >= k: the first k rows of each are used). The triangle's
// diagonal is shifted by `diag` (fused attention works on blocks off the diagonal). `apack`
// holds MC x KC values for pack_a. A is packed a block at a time when the block serves enough
// panels of B (the rule is at `pack` below); otherwise the kernel reads it in place, MR row
// streams the prefetcher follows. A last, partial block of rows is always packed so the
// kernel never reads past A. `bias` (n values, or null) is added to every row of C, with beta.
template <class T>
void multiply_rows(triangle tri, index_t m_lo, index_t m_hi, index_t n, index_t k, T alpha, operand<T> a,
                   const T* packed, index_t ldp, T beta, T* c, index_t ldc, T* apack, index_t diag = 0,
                   const T* bias = nullptr) {
  constexpr index_t nr = tile<T>::nr, mr = tile<T>::mr;
  const index_t panels = (n + nr - 1) / nr;
  // A transposed (a weight gradient's dY^T) is packed on AVX2, its rows being MR-wide strips
  // thousands of values apart. On AVX-512 the kernel reads it in place: packing it there took
  // 15% of a weight gradient's time in loads stalled on the strided rows, with no FMAs to hide
  // them behind (docs/results.md section 5, runs I and J: in place, 512x128x2048 went from
  // 124 to 145 GFLOP/s on one thread; on AVX2 code on the same machine the two were even).
  // A in rows is packed with the fast AVX copy when it serves 8 or more panels of B and no
  // triangle limits its depth; otherwise the kernel reads it in place (measured on AVX2, one
  // thread, in docs/results.md section 5: packing helps from n = 128 and costs 8-15% on n <= 64
  // and on attention's triangular products).
  const bool pack = panels >= 2 && ((a.rs == 1 && tile<T>::w < 16) ||
                                    (fast_row_pack<T>() && tri == triangle::none && panels >= 8));
  const auto pack_block = [&](index_t ic, index_t ie, index_t pc, index_t pe) {
    if (pack) pack_a(a, ic, ie, pc, pe, apack);
  };
  const auto run_tile = [&](const tile_job& t) {
    const T* bp = packed + t.jp * ldp * nr + t.lo * nr;
    const T b = t.first ? beta : T(1);
    const T* tile_bias = t.first && bias ? bias + t.j0 : nullptr;
    T* ct = c + t.i0 * ldc + t.j0;
    if (t.first) prefetch_next_c_tile<T>(t, c, ldc, n, m_hi);
    const index_t depth = t.hi - t.lo;
    if (pack || t.rows < mr) {
      const T* ap = apack + (t.i0 - t.ic) / mr * mr * (t.pe - t.pc);
      if (!pack) pack_a(a, t.i0, t.i0 + t.rows, t.pc, t.pe, apack), ap = apack;
      micro_tile<T, false>(depth, ap + (t.lo - t.pc) * mr, 1, mr, bp, alpha, b, ct, ldc, t.rows, t.cols, tile_bias);
    } else if (a.cs == 1) {
      micro_tile<T, true>(depth, a.data + t.i0 * a.rs + t.lo, a.rs, 1, bp, alpha, b, ct, ldc, t.rows, t.cols, tile_bias);
    } else {
      micro_tile<T, false>(depth, a.data + t.i0 + t.lo * a.cs, 1, a.cs, bp, alpha, b, ct, ldc, t.rows, t.cols,
                           tile_bias);
    }
  };
  walk_tiles<T, 1>(tri, m_lo, m_hi, n, k, diag, pack_block, run_tile);
}

}  // namespace hyena::backend::gemm_detail
