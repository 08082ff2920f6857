// cpu/conv.hpp: fast versions of the ops in cpu_ref/conv.hpp.
//
// Short conv: xsimd over the (contiguous) channels, OpenMP over rows or channels.
// Causal (long) conv: FFT at the power of two n >= 2*seq (the zero padding removes the
// wrap-around) with channel_fft, whose SIMD lanes are adjacent channels, so a time step of a
// block is one vector load. A block of 2W channels rides one complex transform (real lanes +
// i * imaginary lanes), split into its two real spectra by Hermitian symmetry (cpu/fft.hpp).
// Spectra stay in the FFT's scrambled order throughout (no permutations). Each block's filter
// spectrum is computed once per call and shared by the batch; OpenMP runs over blocks, or over
// batch rows within a block when there are fewer blocks than threads.
#pragma once
#include <algorithm>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../context.hpp"
#include "elementwise.hpp"
#include "fft.hpp"

namespace hyena::backend {

namespace conv_detail {

// y[i] += a[i] * b[i] over [0, n).
template <class T>
inline void fma_into(index_t n, const T* a, const T* b, T* y) {
  using batch = xsimd::batch<T>;
  constexpr index_t w = static_cast<index_t>(batch::size);
  index_t i = 0;
  for (; i + w <= n; i += w)
    xsimd::fma(batch::load_unaligned(a + i), batch::load_unaligned(b + i), batch::load_unaligned(y + i))
        .store_unaligned(y + i);
  for (; i < n; ++i) y[i] += a[i] * b[i];
}

struct short_taps_tag {};  // context scratch keys
struct short_sums_tag {};
struct short_block_tag {};

}  // namespace conv_detail

template <class Base>
struct cpu_conv_ops : Base {
  // The short conv's taps as rows, wt[k][c] = weight[c][k], in a buffer the context keeps.
  template <class T>
  static const T* taps_as_rows(host_context& ctx, index_t channels, index_t kernel, const T* weight) {
    T* wt = ctx.scratch<conv_detail::short_taps_tag, T>(1, kernel * channels)[0].data();
    for (index_t c = 0; c < channels; ++c)
      for (index_t k = 0; k < kernel; ++k) wt[k * channels + c] = weight[c * kernel + k];
    return wt;
  }

  template <class T>
  static void short_conv_forward(host_context& ctx, index_t batch, index_t seq, index_t channels, index_t kernel,
                                 const T* x, const T* weight, const T* bias, T* y) {
    Base::check_short_conv(batch, seq, channels, kernel);
    const T* wt = taps_as_rows(ctx, channels, kernel, weight);
    parallel_ranges(ctx, batch * seq, std::max<index_t>(1, 4096 / std::max<index_t>(channels, 1)),
                    [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        index_t t = r % seq;
        T* yr = y + r * channels;
        if (bias) std::copy(bias, bias + channels, yr);
        else std::fill(yr, yr + channels, T(0));
        for (index_t k = std::max<index_t>(0, kernel - 1 - t); k < kernel; ++k)
          conv_detail::fma_into(channels, wt + k * channels, x + (r - (kernel - 1) + k) * channels, yr);
      }
    });
  }

  // One pass over the rows: each thread takes a contiguous block of rows and, row by row,
  // writes dx and adds dy * x (tap sums) and dy (bias sums) into its own block of sums, so dy
  // and x stream from memory once (splitting the channels among threads instead had each
  // thread read part of every row, in a second pass over dy and x). The float sums
  // are flushed into double every 64 rows so long sums stay accurate; the threads' double
  // sums are added in thread order at the end.
  template <class T>
  static void short_conv_backward(host_context& ctx, index_t batch, index_t seq, index_t channels, index_t kernel,
                                  const T* x, const T* weight, const T* dy, T* dx, T* dweight, T* dbias) {
    Base::check_short_conv(batch, seq, channels, kernel);
    const index_t rows = batch * seq, width = (kernel + 1) * channels;  // tap sums, then bias sums
    if (rows == 0 || channels == 0) return;
    const bool sums = dweight || dbias;
    const T* wt = dx ? taps_as_rows(ctx, channels, kernel, weight) : nullptr;
    const int slots = ctx.threads();
    auto& sums_t = ctx.scratch<conv_detail::short_block_tag, T>(slots, sums ? width : 0);
    auto& sums_d = ctx.scratch<conv_detail::short_sums_tag, double>(slots, sums ? width : 0);
    if (sums)
      for (auto& s : sums_d) std::fill(s.begin(), s.begin() + width, 0.0);
    parallel_ranges(ctx, rows, std::max<index_t>(1, 4096 / channels), [&](index_t lo, index_t hi) {
      T* bw = sums ? sums_t[thread_index()].data() : nullptr;  // kernel x channels tap sums
      T* bb = sums ? bw + kernel * channels : nullptr;            // channels bias sums
      double* sd = sums ? sums_d[thread_index()].data() : nullptr;
      if (sums) std::fill(bw, bw + width, T(0));
      const auto flush = [&] {
        for (index_t i = 0; i < width; ++i) sd[i] += bw[i], bw[i] = T(0);
      };
      index_t since = 0;
      for (index_t r = lo; r < hi; ++r) {
        const index_t s = r % seq;
        const T* dyr = dy + r * channels;
        if (dx) {
          T* dxr = dx + r * channels;
          std::fill(dxr, dxr + channels, T(0));
          // x[s] reached y[s + K-1-k] through tap k.
          for (index_t k = std::max<index_t>(0, s + kernel - seq); k < kernel; ++k)
            conv_detail::fma_into(channels, wt + k * channels, dy + (r + (kernel - 1) - k) * channels, dxr);
        }
        if (!sums) continue;
        if (dweight)  // y[s] read x[s - (K-1) + k] through tap k
          for (index_t k = std::max<index_t>(0, kernel - 1 - s); k < kernel; ++k)
            conv_detail::fma_into(channels, dyr, x + (r - (kernel - 1) + k) * channels, bw + k * channels);
        if (dbias) add_into(channels, dyr, bb);
        if (++since == 64) flush(), since = 0;
      }
      if (sums) flush();
    });
    if (!sums) return;
    for (index_t c = 0; c < channels; ++c) {
      double sb = 0;
      for (int t = 0; t < slots; ++t) sb += sums_d[t][kernel * channels + c];
      if (dbias) dbias[c] += T(sb);
      if (dweight)
        for (index_t k = 0; k < kernel; ++k) {
          double sw = 0;
          for (int t = 0; t < slots; ++t) sw += sums_d[t][k * channels + c];
          dweight[c * kernel + k] += T(sw);
        }
    }
  }

  template <class T>
  static void causal_conv_forward(host_context& ctx, index_t batch, index_t seq, index_t channels, const T* x,
                                  const T* h, index_t h_stride, T* y) {
    Base::check_causal_conv(batch, seq, channels, h_stride);
    if (batch * seq * channels == 0) return;
    using S = conv_fft_state<T>;
    using V = typename S::vec;
    namespace cd = conv_detail;
    constexpr index_t w = S::lanes;
    auto& st = ctx.state<S>();
    const index_t n = S::conv_size(seq), nb = S::blocks(channels);
    const auto& fft = st.plan(n);
    st.ensure(ctx.threads(), n, false);
    const T scale = T(1) / T(4 * n);  // the 1/2 of each split (data and filter) and the inverse's 1/n
    auto work = [&](int tid, index_t k, index_t r0, index_t r1) {
      if (r0 == r1) return;
      auto& wk = st.workers[tid];
      const auto b = cd::lane_block::of<S>(k, channels);
      cd::filter_spectrum<S>(fft, wk, seq, h, h_stride, b, scale);
      T* zr = wk.z.data();
      T* zi = zr + n * w;
      for (index_t r = r0; r < r1; ++r) {
        cd::load_block<S>(zr, n, seq, x + r * seq * channels, channels, b);
        fft.forward_scrambled(zr, zi, true);
        for (const auto& [p, q] : fft.mirror_pairs()) {
          const cd::mirror<V> m(zr, n, p, q), f(wk.hf.data(), n, p, q);
          V y1r, y1i, y2r, y2i;
          cd::cmul<false>(m.ur, m.ui, f.ur, f.ui, y1r, y1i);
          cd::cmul<false>(m.vr, m.vi, f.vr, f.vi, y2r, y2i);
          cd::merge(y1r, y1i, y2r, y2i, zr, zi, p, q);
        }
        fft.inverse_scrambled(zr, zi, true);
        cd::store_block<S>(zr, n, seq, y + r * seq * channels, channels, b);
      }
    };
    cd::run_blocks(ctx.threads(), nb, batch, n, work, [](int, index_t, int, index_t) {});
  }

  template <class T>
  static void causal_conv_backward(host_context& ctx, index_t batch, index_t seq, index_t channels, const T* x,
                                   const T* h, index_t h_stride, const T* dy, T* dx, T* dh) {
    Base::check_causal_conv(batch, seq, channels, h_stride);
    if (!dx && !dh) return;
    if (seq == 0 || channels == 0) return;
    using S = conv_fft_state<T>;
    using V = typename S::vec;
    namespace cd = conv_detail;
    constexpr index_t w = S::lanes;
    auto& st = ctx.state<S>();
    const index_t n = S::conv_size(seq), nb = S::blocks(channels), acc_len = 4 * (n / 2 + 1) * w;
    const auto& fft = st.plan(n);
    st.ensure(ctx.threads(), n, true);
    const T scale = T(1) / T(4 * n);
    // One batch row: DY (in z) and X (in x); dx = IFFT(DY conj(H)), acc += DY conj(X).
    auto row = [&](auto with_dx, auto with_dh, typename S::worker& wk, index_t r, const cd::lane_block& b) {
      T* zr = wk.z.data();
      T* zi = zr + n * w;
      T* xr = wk.x.data();
      T* xi = xr + n * w;
      cd::load_block<S>(zr, n, seq, dy + r * seq * channels, channels, b);
      fft.forward_scrambled(zr, zi, true);
      if constexpr (with_dh()) {
        cd::load_block<S>(xr, n, seq, x + r * seq * channels, channels, b);
        fft.forward_scrambled(xr, xi, true);
      }
      T* acc = wk.acc.data();
      for (const auto& [p, q] : fft.mirror_pairs()) {
        const cd::mirror<V> d(zr, n, p, q);
        if constexpr (with_dh()) {
          const cd::mirror<V> m(xr, n, p, q);
          V pr, pi;
          cd::cmul<true>(d.ur, d.ui, m.ur, m.ui, pr, pi);
          (V::load_aligned(acc) + pr).store_aligned(acc);
          (V::load_aligned(acc + w) + pi).store_aligned(acc + w);
          cd::cmul<true>(d.vr, d.vi, m.vr, m.vi, pr, pi);
          (V::load_aligned(acc + 2 * w) + pr).store_aligned(acc + 2 * w);
          (V::load_aligned(acc + 3 * w) + pi).store_aligned(acc + 3 * w);
          acc += 4 * w;
        }
        if constexpr (with_dx()) {
          const cd::mirror<V> f(wk.hf.data(), n, p, q);
          V y1r, y1i, y2r, y2i;
          cd::cmul<true>(d.ur, d.ui, f.ur, f.ui, y1r, y1i);
          cd::cmul<true>(d.vr, d.vi, f.vr, f.vi, y2r, y2i);
          cd::merge(y1r, y1i, y2r, y2i, zr, zi, p, q);
        }
      }
      if constexpr (with_dx()) {
        fft.inverse_scrambled(zr, zi, true);
        cd::store_block<S>(zr, n, seq, dx + r * seq * channels, channels, b);
      }
    };
    auto work = [&](int tid, index_t k, index_t r0, index_t r1) {
      auto& wk = st.workers[tid];
      const auto b = cd::lane_block::of<S>(k, channels);
      if (dh) std::fill(wk.acc.begin(), wk.acc.begin() + acc_len, T(0));
      if (r0 == r1) return;
      if (dx) cd::filter_spectrum<S>(fft, wk, seq, h, h_stride, b, scale);
      using yes = std::true_type;
      using no = std::false_type;
      for (index_t r = r0; r < r1; ++r) {
        if (dx && dh) row(yes{}, yes{}, wk, r, b);
        else if (dx) row(yes{}, no{}, wk, r, b);
        else row(no{}, yes{}, wk, r, b);
      }
    };
    // dh: sum the gang's spectra, back to the time domain, add into the filter rows.
    auto finish = [&](int tid, index_t k, int first, index_t gang) {
      if (!dh) return;
      auto& wk = st.workers[tid];
      T* acc = wk.acc.data();
      for (index_t g = 0; g < gang; ++g)
        if (first + g != tid) {
          const T* other = st.workers[first + g].acc.data();
          for (index_t i = 0; i < acc_len; i += w)
            (V::load_aligned(acc + i) + V::load_aligned(other + i)).store_aligned(acc + i);
        }
      T* zr = wk.z.data();
      T* zi = zr + n * w;
      const V sc(scale);
      for (const auto& [p, q] : fft.mirror_pairs()) {
        cd::merge(V::load_aligned(acc) * sc, V::load_aligned(acc + w) * sc, V::load_aligned(acc + 2 * w) * sc,
                  V::load_aligned(acc + 3 * w) * sc, zr, zi, p, q);
        acc += 4 * w;
      }
      fft.inverse_scrambled(zr, zi, true);
      const auto b = cd::lane_block::of<S>(k, channels);
      cd::for_tiles<S>(seq, b, [&](index_t l, index_t s) { dh[(b.c0 + l) * h_stride + s] += zr[s * w + l]; },
                       [&](index_t l, index_t s) { dh[(b.c0 + w + l) * h_stride + s] += zi[s * w + l]; });
    };
    cd::run_blocks(ctx.threads(), nb, batch, n, work, finish);
  }
};

}  // namespace hyena::backend
