// cpu/conv.hpp: fast versions of the ops in cpu_ref/conv.hpp.
//
// Short conv: xsimd over the (contiguous) channels, OpenMP over rows or channels.
// Causal (long) conv: FFT at size >= 2*seq (the zero padding removes the wrap-around),
// real-to-complex, each channel's filter spectrum computed once per call and shared by
// the whole batch, OpenMP over channels. Channels are handled in small tiles so the
// strided gathers from the (batch, seq, channels) layout read whole cache lines.
#pragma once
#include <algorithm>
#include <complex>
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

// a * b and a * conj(b), written out: std::complex's operator* calls a slow NaN-safe routine.
template <class T>
inline std::complex<T> cmul(std::complex<T> a, std::complex<T> b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}
template <class T>
inline std::complex<T> cmul_conj(std::complex<T> a, std::complex<T> b) {
  return {a.real() * b.real() + a.imag() * b.imag(), a.imag() * b.real() - a.real() * b.imag()};
}

// The (scaled) spectra of filters h[j, 0..seq-1], j < nc, into w.hf.
template <class W, class T>
void filter_spectra(W& w, index_t n, index_t seq, index_t nc, const T* h, index_t h_stride, T scale) {
  const index_t m = real_fft<T>::spectrum_size(n);
  for (index_t j = 0; j < nc; ++j) {
    T* buf = w.b.data();
    for (index_t s = 0; s < seq; ++s) buf[s] = h[j * h_stride + s] * scale;
    std::fill(buf + seq, buf + n, T(0));
    w.fft.forward(buf, w.hf.data() + j * m, n);
  }
}
// buf[j*n + t] = src[t*ld + j] for t < seq, zero up to n.
template <class T>
void gather(T* buf, index_t n, index_t seq, index_t nc, const T* src, index_t ld) {
  for (index_t t = 0; t < seq; ++t)
    for (index_t j = 0; j < nc; ++j) buf[j * n + t] = src[t * ld + j];
  for (index_t j = 0; j < nc; ++j) std::fill(buf + j * n + seq, buf + (j + 1) * n, T(0));
}
template <class T>
void scatter(const T* buf, index_t n, index_t seq, index_t nc, T* dst, index_t ld) {
  for (index_t t = 0; t < seq; ++t)
    for (index_t j = 0; j < nc; ++j) dst[t * ld + j] = buf[j * n + t];
}

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace conv_detail

// Per-thread FFT plans and scratch, owned by the context (created on first use).
template <class T>
struct conv_fft_state {
  static constexpr index_t tile = 8;  // channels per gather: 32 bytes of floats per row
  struct worker {
    real_fft<T> fft;
    std::vector<T> a, b;                      // tile signals of length n
    std::vector<std::complex<T>> hf, acc, u, v;  // tile spectra (hf, acc) and one-channel temporaries
    void reserve(index_t n) {
      index_t m = real_fft<T>::spectrum_size(n);
      a.resize(tile * n);
      b.resize(tile * n);
      hf.resize(tile * m);
      acc.resize(tile * m);
      u.resize(m);
      v.resize(m);
    }
  };
  std::vector<worker> workers;
  void ensure(int threads) {
    if (static_cast<int>(workers.size()) < threads) workers.resize(threads);
  }
};

template <class Base>
struct cpu_conv_ops : Base {
  template <class T>
  static void short_conv_forward(host_context& ctx, index_t batch, index_t seq, index_t channels, index_t kernel,
                                 const T* x, const T* weight, const T* bias, T* y) {
    Base::check_short_conv(batch, seq, channels, kernel);
    std::vector<T> wt(kernel * channels);  // taps as rows: wt[k][c] = weight[c][k]
    for (index_t c = 0; c < channels; ++c)
      for (index_t k = 0; k < kernel; ++k) wt[k * channels + c] = weight[c * kernel + k];
    parallel_ranges(ctx, batch * seq, std::max<index_t>(1, 4096 / std::max<index_t>(channels, 1)),
                    [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        index_t t = r % seq;
        T* yr = y + r * channels;
        if (bias) std::copy(bias, bias + channels, yr);
        else std::fill(yr, yr + channels, T(0));
        for (index_t k = std::max<index_t>(0, kernel - 1 - t); k < kernel; ++k)
          conv_detail::fma_into(channels, wt.data() + k * channels, x + (r - (kernel - 1) + k) * channels, yr);
      }
    });
  }

  template <class T>
  static void short_conv_backward(host_context& ctx, index_t batch, index_t seq, index_t channels, index_t kernel,
                                  const T* x, const T* weight, const T* dy, T* dx, T* dweight, T* dbias) {
    Base::check_short_conv(batch, seq, channels, kernel);
    if (dx) {
      std::vector<T> wt(kernel * channels);
      for (index_t c = 0; c < channels; ++c)
        for (index_t k = 0; k < kernel; ++k) wt[k * channels + c] = weight[c * kernel + k];
      parallel_ranges(ctx, batch * seq, std::max<index_t>(1, 4096 / std::max<index_t>(channels, 1)),
                      [&](index_t lo, index_t hi) {
        for (index_t r = lo; r < hi; ++r) {
          index_t s = r % seq;
          T* dxr = dx + r * channels;
          std::fill(dxr, dxr + channels, T(0));
          // x[s] reached y[s + K-1-k] through tap k.
          for (index_t k = std::max<index_t>(0, s + kernel - seq); k < kernel; ++k)
            conv_detail::fma_into(channels, wt.data() + k * channels, dy + (r + (kernel - 1) - k) * channels, dxr);
        }
      });
    }
    if (!dweight && !dbias) return;
    // Sums over batch*seq rows: each thread owns a channel range; partial sums over
    // blocks of rows in T are flushed into double so long sums stay accurate.
    parallel_ranges(ctx, channels, 64, [&](index_t lo, index_t hi) {
      const index_t nc = hi - lo, flush_every = 64;
      std::vector<T> bw(kernel * nc, T(0)), bb(nc, T(0));
      std::vector<double> sw(kernel * nc, 0.0), sb(nc, 0.0);
      auto flush = [&] {
        for (index_t i = 0; i < kernel * nc; ++i) sw[i] += bw[i], bw[i] = T(0);
        for (index_t i = 0; i < nc; ++i) sb[i] += bb[i], bb[i] = T(0);
      };
      index_t since = 0;
      for (index_t b = 0; b < batch; ++b)
        for (index_t t = 0; t < seq; ++t) {
          const T* dyr = dy + (b * seq + t) * channels + lo;
          if (dweight)
            for (index_t k = std::max<index_t>(0, kernel - 1 - t); k < kernel; ++k)
              conv_detail::fma_into(nc, dyr, x + (b * seq + t - (kernel - 1) + k) * channels + lo, bw.data() + k * nc);
          if (dbias)
            for (index_t i = 0; i < nc; ++i) bb[i] += dyr[i];
          if (++since == flush_every) flush(), since = 0;
        }
      flush();
      for (index_t i = 0; i < nc; ++i) {
        if (dweight)
          for (index_t k = 0; k < kernel; ++k) dweight[(lo + i) * kernel + k] += T(sw[k * nc + i]);
        if (dbias) dbias[lo + i] += T(sb[i]);
      }
    });
  }

  template <class T>
  static void causal_conv_forward(host_context& ctx, index_t batch, index_t seq, index_t channels, const T* x,
                                  const T* h, index_t h_stride, T* y) {
    Base::check_causal_conv(batch, seq, channels, h_stride);
    if (batch * seq * channels == 0) return;
    using S = conv_fft_state<T>;
    const index_t n = real_fft<T>::conv_size(seq), m = real_fft<T>::spectrum_size(n);
    auto& st = ctx.state<S>();
    st.ensure(ctx.threads());
    const T scale = T(1) / T(n);
    parallel_ranges(ctx, channels, 4, [&](index_t lo, index_t hi) {
      auto& w = st.workers[conv_detail::thread_id()];
      w.reserve(n);
      for (index_t c0 = lo; c0 < hi; c0 += S::tile) {
        const index_t nc = std::min(S::tile, hi - c0);
        conv_detail::filter_spectra(w, n, seq, nc, h + c0 * h_stride, h_stride, scale);
        for (index_t b = 0; b < batch; ++b) {
          conv_detail::gather(w.a.data(), n, seq, nc, x + b * seq * channels + c0, channels);
          for (index_t j = 0; j < nc; ++j) {
            w.fft.forward(w.a.data() + j * n, w.u.data(), n);
            const std::complex<T>* hf = w.hf.data() + j * m;
            for (index_t f = 0; f < m; ++f) w.u[f] = conv_detail::cmul(w.u[f], hf[f]);
            w.fft.inverse(w.u.data(), w.a.data() + j * n, n);
          }
          conv_detail::scatter(w.a.data(), n, seq, nc, y + b * seq * channels + c0, channels);
        }
      }
    });
  }

  template <class T>
  static void causal_conv_backward(host_context& ctx, index_t batch, index_t seq, index_t channels, const T* x,
                                   const T* h, index_t h_stride, const T* dy, T* dx, T* dh) {
    Base::check_causal_conv(batch, seq, channels, h_stride);
    if (!dx && !dh) return;
    if (seq == 0 || channels == 0) return;
    using S = conv_fft_state<T>;
    const index_t n = real_fft<T>::conv_size(seq), m = real_fft<T>::spectrum_size(n);
    auto& st = ctx.state<S>();
    st.ensure(ctx.threads());
    const T scale = T(1) / T(n);
    parallel_ranges(ctx, channels, 4, [&](index_t lo, index_t hi) {
      auto& w = st.workers[conv_detail::thread_id()];
      w.reserve(n);
      for (index_t c0 = lo; c0 < hi; c0 += S::tile) {
        const index_t nc = std::min(S::tile, hi - c0);
        if (dx) conv_detail::filter_spectra(w, n, seq, nc, h + c0 * h_stride, h_stride, scale);
        if (dh) std::fill(w.acc.begin(), w.acc.begin() + nc * m, std::complex<T>(0));
        for (index_t b = 0; b < batch; ++b) {
          conv_detail::gather(w.a.data(), n, seq, nc, dy + b * seq * channels + c0, channels);
          if (dh) conv_detail::gather(w.b.data(), n, seq, nc, x + b * seq * channels + c0, channels);
          for (index_t j = 0; j < nc; ++j) {
            w.fft.forward(w.a.data() + j * n, w.u.data(), n);
            if (dh) {
              // dh is the correlation of dy with x: sum over the batch of DY * conj(X).
              w.fft.forward(w.b.data() + j * n, w.v.data(), n);
              std::complex<T>* acc = w.acc.data() + j * m;
              for (index_t f = 0; f < m; ++f) acc[f] += conv_detail::cmul_conj(w.u[f], w.v[f]);
            }
            if (dx) {
              // dx is the correlation of dy with h: DY * conj(H).
              const std::complex<T>* hf = w.hf.data() + j * m;
              for (index_t f = 0; f < m; ++f) w.u[f] = conv_detail::cmul_conj(w.u[f], hf[f]);
              w.fft.inverse(w.u.data(), w.a.data() + j * n, n);
            }
          }
          if (dx) conv_detail::scatter(w.a.data(), n, seq, nc, dx + b * seq * channels + c0, channels);
        }
        if (dh)
          for (index_t j = 0; j < nc; ++j) {
            w.fft.inverse(w.acc.data() + j * m, w.b.data(), n);
            T* dhc = dh + (c0 + j) * h_stride;
            for (index_t s = 0; s < seq; ++s) dhc[s] += w.b[s] * scale;
          }
      }
    });
  }

};

}  // namespace hyena::backend
