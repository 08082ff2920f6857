// cpu/gemm_kernel.hpp: a blocked, register-tiled matrix product on one thread.
//
// After BLIS: B, the small operand (weights, or a head's keys), is copied once per product
// into panels of NR columns the micro-kernel reads as one contiguous stream; A is read in
// place or, when transposed, copied an L1-sized block (mc x kc) at a time. The micro-kernel
// keeps an MR x NR tile of C in registers (MR rows, two SIMD vectors each) and runs over the
// depth with one broadcast of A per row and one load of B per vector: FMA-bound, not
// load-bound. Measured: 80-90% of the FMA peak on the models' shapes (docs/results.md).
#pragma once
#include <algorithm>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../../config.hpp"
#include "../triangle.hpp"

// GCC's unroll hint (the kernel's loops over rows must become straight-line code so the
// accumulators stay in registers); nvcc, which sees these headers in the CUDA tests, has no such pragma.
#if defined(__CUDACC__)
#define HYENA_UNROLL_ALL
#else
#define HYENA_UNROLL_ALL _Pragma("GCC unroll 16")
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
      for (index_t j = 0; j < nr; ++j) {
        if (j < cols) {
          const T* src = b.data + (j0 + j) * b.cs;
          for (index_t p = 0; p < k; ++p) dst[p * nr + j] = src[p * b.rs];
        } else {
          for (index_t p = 0; p < k; ++p) dst[p * nr + j] = T(0);
        }
      }
    }
  }
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
    for (index_t r = 0; r < mr; ++r) {
      if (r < rows) {
        const T* src = a.data + (i0 + r) * a.rs + p_lo * a.cs;
        for (index_t p = 0; p < depth; ++p) dst[p * mr + r] = src[p * a.cs];
      } else {
        for (index_t p = 0; p < depth; ++p) dst[p * mr + r] = T(0);
      }
    }
  }
}

// C tile (rows x cols <= MR x NR) = alpha * A_tile * B_panel + beta * C over depth kc, B
// packed. A_tile row r, depth p is ap[r * rs + p * cs]: a packed micro-panel (rs = 1,
// cs = MR) or A in place (one of the strides 1: the template flag makes it a constant).
// With beta == 0, C is not read.
template <class T, bool DEPTH_CONTIGUOUS>
inline void micro_tile(index_t kc, const T* ap, index_t rs, index_t cs, const T* bp, T alpha, T beta, T* c,
                       index_t ldc, index_t rows, index_t cols) {
  using batch = typename tile<T>::batch;
  constexpr index_t w = tile<T>::w, nr = tile<T>::nr, mr = tile<T>::mr;
  batch acc0[mr], acc1[mr];
  HYENA_UNROLL_ALL
  for (index_t r = 0; r < mr; ++r) acc0[r] = acc1[r] = batch(T(0));
  for (index_t p = 0; p < kc; ++p) {
    const batch b0 = batch::load_aligned(bp + p * nr), b1 = batch::load_aligned(bp + p * nr + w);
    HYENA_UNROLL_ALL
    for (index_t r = 0; r < mr; ++r) {
      const batch av(DEPTH_CONTIGUOUS ? ap[r * rs + p] : ap[r + p * cs]);
      acc0[r] = xsimd::fma(av, b0, acc0[r]);
      acc1[r] = xsimd::fma(av, b1, acc1[r]);
    }
  }
  const batch va(alpha), vb(beta);
  if (rows == mr && cols == nr) {
    HYENA_UNROLL_ALL
    for (index_t r = 0; r < mr; ++r) {
      T* cr = c + r * ldc;
      batch y0 = acc0[r] * va, y1 = acc1[r] * va;
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
      y = beta == T(0) ? out[r * nr + j] : out[r * nr + j] + beta * y;
    }
}

// The depth range [lo, hi) a tile of rows [i0, i0 + rows) needs, given the triangle, whose
// diagonal is shifted by `diag` (entry (i, p) is on or below it when p <= i + diag).
inline void tile_depth(triangle tri, index_t diag, index_t i0, index_t rows, index_t k, index_t& lo, index_t& hi) {
  lo = 0, hi = k;
  if (tri == triangle::a_lower) hi = std::clamp<index_t>(i0 + rows + diag, 0, k);
  if (tri == triangle::a_upper) lo = std::clamp<index_t>(i0 + diag, 0, k);
}

// Rows [m_lo, m_hi) of C = alpha * op(A) * op(B) + beta * C, op(B) packed by pack_b (all
// panels, packed with depth ldp >= k: the first k rows of each are used). The triangle's
// diagonal is shifted by `diag` (fused attention works on blocks off the diagonal). `apack` holds MC x KC values for pack_a. A transposed (a weight gradient's
// dy^T, thousands of rows apart) is packed when a block serves two or more panels of B;
// A in rows is read in place, MR row streams the prefetcher follows (measured: packing it
// costs more than it saves, being a transposing copy). A last, partial block of rows is
// always packed so the kernel never reads past A.
template <class T>
void multiply_rows(triangle tri, index_t m_lo, index_t m_hi, index_t n, index_t k, T alpha, operand<T> a,
                   const T* packed, index_t ldp, T beta, T* c, index_t ldc, T* apack, index_t diag = 0) {
  constexpr index_t nr = tile<T>::nr, mr = tile<T>::mr, kc = tile<T>::kc, mc = tile<T>::mc;
  const index_t panels = (n + nr - 1) / nr;
  const bool pack = panels >= 2 && a.rs == 1;
  for (index_t pc = 0; pc < std::max<index_t>(k, 1); pc += kc) {
    const index_t pe = std::min(k, pc + kc);
    for (index_t ic = m_lo; ic < m_hi; ic += mc) {
      const index_t ie = std::min(m_hi, ic + mc);
      if (pack) pack_a(a, ic, ie, pc, pe, apack);
      for (index_t jp = 0; jp < panels; ++jp) {
        const index_t j0 = jp * nr, cols = std::min(nr, n - j0);
        for (index_t i0 = ic; i0 < ie; i0 += mr) {
          const index_t rows = std::min(mr, ie - i0);
          if (tri == triangle::c_lower && j0 > i0 + rows - 1 + diag) continue;  // wholly above the diagonal
          index_t klo, khi;
          tile_depth(tri, diag, i0, rows, k, klo, khi);
          // The first pass that touches a tile applies beta; later ones accumulate.
          const bool first = klo < khi ? (pc <= klo && klo < pe) : pc == 0;
          const index_t lo = std::max(klo, pc), hi = std::max(lo, std::min(khi, pe));
          if (!first && hi == lo) continue;
          const T* bp = packed + jp * ldp * nr + lo * nr;
          const T b = first ? beta : T(1);
          T* ct = c + i0 * ldc + j0;
          if (pack || rows < mr) {
            const T* ap = apack + (i0 - ic) / mr * mr * (pe - pc);
            if (!pack) pack_a(a, i0, i0 + rows, pc, pe, apack), ap = apack;
            micro_tile<T, false>(hi - lo, ap + (lo - pc) * mr, 1, mr, bp, alpha, b, ct, ldc, rows, cols);
          } else if (a.cs == 1) {
            micro_tile<T, true>(hi - lo, a.data + i0 * a.rs + lo, a.rs, 1, bp, alpha, b, ct, ldc, rows, cols);
          } else {
            micro_tile<T, false>(hi - lo, a.data + i0 + lo * a.cs, 1, a.cs, bp, alpha, b, ct, ldc, rows, cols);
          }
        }
      }
    }
  }
}

}  // namespace hyena::backend::gemm_detail
