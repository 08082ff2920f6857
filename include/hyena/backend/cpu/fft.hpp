// cpu/fft.hpp: the pieces of the cpu backend's FFT causal conv (cpu/conv.hpp) around
// channel_fft: the per-context state (plans, per-thread scratch), moving a block of 2W channels
// between the (batch, seq, channels) layout and split lanes, separating / merging the two real
// spectra a complex transform carries, and the thread schedule over blocks and batch rows.
//
// A block of channels [c0, c0 + 2W) travels as z = x[c0..c0+W) + i x[c0+W..c0+2W). With
// Z = FFT(z) and a, b its values at frequencies k and n-k, the real-lane spectrum at k is
// (a + conj b)/2 and the imaginary-lane one (a - conj b)/(2i); after filtering, Y1 + i Y2 at k
// and conj(Y1) + i conj(Y2) at n-k put them back for one inverse transform.
#pragma once
#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../context.hpp"
#include "channel_fft.hpp"

namespace hyena::backend {

// Per-context state of the causal conv: one FFT plan per size (shared, read-only) and
// per-thread scratch that only grows, so calls after the first do not allocate.
template <class T>
struct conv_fft_state {
  using fft = channel_fft<T>;
  using vec = xsimd::batch<T>;
  using buffer = std::vector<T, xsimd::aligned_allocator<T, 64>>;
  static constexpr index_t lanes = fft::lanes;
  static constexpr index_t block = 2 * lanes;  // channels per transform: W real + W imaginary lanes

  // The power-of-two transform size with no wrap-around for a length-seq causal conv.
  static index_t conv_size(index_t seq) { return index_t(std::bit_ceil(std::uint64_t(std::max<index_t>(1, 2 * seq)))); }
  static index_t blocks(index_t channels) { return (channels + block - 1) / block; }
  // Scratch bytes one thread holds for a length-seq conv (for memory estimates).
  static double worker_bytes(index_t seq, bool backward) {
    const double n = double(conv_size(seq)), pairs = n / 2 + 1, v = double(lanes * sizeof(T));
    return (backward ? 6 : 4) * n * v + (backward ? 4 : 0) * pairs * v;
  }

  struct worker {
    buffer z, x, hf;  // split transforms [re: n vectors | im: n vectors]: data, x (backward), filters
    buffer acc;       // dh spectra per mirror pair: (u, v) re and im
    void reserve(index_t n, bool backward) {
      const index_t v = n * lanes, pv = (n / 2 + 1) * lanes;
      grow(z, 2 * v), grow(hf, 2 * v);
      if (backward) grow(x, 2 * v), grow(acc, 4 * pv);
    }
    static void grow(buffer& b, index_t size) {
      if (index_t(b.size()) < size) b.resize(size);
    }
  };

  std::map<index_t, std::unique_ptr<fft>> plans;
  std::vector<worker> workers;

  const fft& plan(index_t n) {
    auto& p = plans[n];
    if (!p) p = std::make_unique<fft>(n);
    return *p;
  }
  void ensure(int threads, index_t n, bool backward) {
    if (index_t(workers.size()) < threads) workers.resize(threads);
    for (int t = 0; t < threads; ++t) workers[t].reserve(n, backward);
  }
};

namespace conv_detail {

// The channels of block k: lanes [0, n1) of the real part are channels c0.., lanes [0, n2)
// of the imaginary part channels c0 + W..; missing channels (last block) are zero lanes.
struct lane_block {
  index_t c0, n1, n2;
  template <class S>
  static lane_block of(index_t k, index_t channels) {
    const index_t c0 = k * S::block;
    return {c0, std::clamp<index_t>(channels - c0, 0, S::lanes), std::clamp<index_t>(channels - c0 - S::lanes, 0, S::lanes)};
  }
};

template <class V, class T>
inline V load_lanes(const T* p, index_t k) {
  constexpr index_t w = index_t(V::size);
  if (k == w) return V::load_unaligned(p);
  alignas(64) T tmp[w] = {};
  std::copy(p, p + k, tmp);
  return V::load_aligned(tmp);
}
template <class V, class T>
inline void store_lanes(const V& v, T* p, index_t k) {
  constexpr index_t w = index_t(V::size);
  if (k == w) return v.store_unaligned(p);
  alignas(64) T tmp[w];
  v.store_aligned(tmp);
  std::copy(tmp, tmp + k, p);
}

// z <- rows t < seq of a (seq, ld) activation slice, zero up to n/2 (the FFT skips the rest).
template <class S, class T>
void load_block(T* z, index_t n, index_t seq, const T* src, index_t ld, lane_block b) {
  using V = typename S::vec;
  constexpr index_t w = S::lanes;
  T* zi = z + n * w;
  for (index_t t = 0; t < seq; ++t) {
    load_lanes<V>(src + t * ld + b.c0, b.n1).store_aligned(z + t * w);
    (b.n2 ? load_lanes<V>(src + t * ld + b.c0 + w, b.n2) : V(T(0))).store_aligned(zi + t * w);
  }
  std::fill(z + seq * w, z + n / 2 * w, T(0));
  std::fill(zi + seq * w, zi + n / 2 * w, T(0));
}
template <class S, class T>
void store_block(const T* z, index_t n, index_t seq, T* dst, index_t ld, lane_block b) {
  using V = typename S::vec;
  constexpr index_t w = S::lanes;
  for (index_t t = 0; t < seq; ++t) {
    store_lanes(V::load_aligned(z + t * w), dst + t * ld + b.c0, b.n1);
    if (b.n2) store_lanes(V::load_aligned(z + (n + t) * w), dst + t * ld + b.c0 + w, b.n2);
  }
}

// u = a + conj(b), v = -i (a - conj(b)) for the values a, b at frequencies k, n-k (positions
// p, q of a split transform z): twice the spectra of the real-lane and imaginary-lane signals at k.
template <class V>
struct mirror {
  V ur, ui, vr, vi;
  mirror(const V& ar, const V& ai, const V& br, const V& bi) : ur(ar + br), ui(ai - bi), vr(ai + bi), vi(br - ar) {}
  template <class T>
  mirror(const T* z, index_t n, index_t p, index_t q)
      : mirror(V::load_aligned(z + p * V::size), V::load_aligned(z + (n + p) * V::size), V::load_aligned(z + q * V::size),
               V::load_aligned(z + (n + q) * V::size)) {}
};
// (a + i b) at k and (conj(a) + i conj(b)) at n-k: the inverse of the split above.
template <class V, class T>
inline void merge(const V& ar, const V& ai, const V& br, const V& bi, T* zr, T* zi, index_t p, index_t q) {
  constexpr index_t w = index_t(V::size);
  (ar + bi).store_aligned(zr + q * w);
  (br - ai).store_aligned(zi + q * w);
  (ar - bi).store_aligned(zr + p * w);
  (ai + br).store_aligned(zi + p * w);
}
// x * y, or x * conj(y) when CONJ.
template <bool CONJ, class V>
inline void cmul(const V& xr, const V& xi, const V& yr, const V& yi, V& outr, V& outi) {
  if constexpr (CONJ) outr = xsimd::fma(xr, yr, xi * yi), outi = xsimd::fms(xi, yr, xr * yi);
  else outr = xsimd::fms(xr, yr, xi * yi), outi = xsimd::fma(xr, yi, xi * yr);
}

// f1(lane, s) for the real lanes and f2 for the imaginary lanes, s < seq, in tiles of 16 steps:
// a transpose between channel rows (h, dh) and the lanes that reads whole cache lines.
template <class S, class F1, class F2>
void for_tiles(index_t seq, lane_block b, F1&& f1, F2&& f2) {
  for (index_t s0 = 0; s0 < seq; s0 += 16) {
    const index_t s1 = std::min(seq, s0 + 16);
    for (index_t l = 0; l < b.n1; ++l)
      for (index_t s = s0; s < s1; ++s) f1(l, s);
    for (index_t l = 0; l < b.n2; ++l)
      for (index_t s = s0; s < s1; ++s) f2(l, s);
  }
}

// hf <- the transform of the filters of block b, times scale: their rows h[c, 0..seq)
// transposed into lanes. It stays packed; the pointwise loops split it with `mirror`.
template <class S, class T>
void filter_spectrum(const typename S::fft& fft, typename S::worker& wk, index_t seq, const T* h, index_t hs,
                     lane_block b, T scale) {
  constexpr index_t w = S::lanes;
  const index_t n = fft.size();
  T* z = wk.hf.data();
  T* zi = z + n * w;
  std::fill(z, z + n / 2 * w, T(0));
  std::fill(zi, zi + n / 2 * w, T(0));
  for_tiles<S>(seq, b, [&](index_t l, index_t s) { z[s * w + l] = h[(b.c0 + l) * hs + s] * scale; },
               [&](index_t l, index_t s) { zi[s * w + l] = h[(b.c0 + w + l) * hs + s] * scale; });
  fft.forward_scrambled(z, zi, true);
}

// Splits the transforms over threads: with at least as many blocks as threads each thread
// takes whole blocks; otherwise a gang of threads shares a block, each taking some batch rows,
// and the gang's first thread calls finish after a barrier (to reduce over the rows).
// work(tid, block, row0, row1); finish(tid, block, first_tid, gang).
template <class Work, class Finish>
void run_blocks(int max_threads, index_t nb, index_t batch, index_t n, Work&& work, Finish&& finish) {
  auto serial = [&] {
    for (index_t k = 0; k < nb; ++k) work(0, k, index_t(0), batch), finish(0, k, 0, index_t(1));
  };
  // Below this much work, waking threads costs more than it saves.
  if (max_threads <= 1 || batch * nb * n < 4096) return serial();
#ifdef _OPENMP
#pragma omp parallel num_threads(max_threads)
  {
    // The team may be smaller than asked for: plan with the threads there are.
    const index_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
    if (nb >= nt) {
      const index_t per = (nb + nt - 1) / nt, k0 = std::min(nb, tid * per), k1 = std::min(nb, k0 + per);
      for (index_t k = k0; k < k1; ++k) work(int(tid), k, index_t(0), batch), finish(int(tid), k, int(tid), index_t(1));
    } else {
      const index_t gang = std::clamp<index_t>(nt / nb, 1, batch), k = tid / gang, r = tid % gang;
      const index_t per = (batch + gang - 1) / gang;
      if (k < nb) work(int(tid), k, std::min(batch, r * per), std::min(batch, (r + 1) * per));
#pragma omp barrier
      if (k < nb && r == 0) finish(int(tid), k, int(tid), gang);
    }
  }
#else
  serial();
#endif
}

}  // namespace conv_detail

}  // namespace hyena::backend
