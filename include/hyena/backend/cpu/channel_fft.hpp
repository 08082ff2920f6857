// cpu/channel_fft.hpp: power-of-two complex FFTs, `lanes` of them at once, one per SIMD lane.
//
// The data is split complex: element k of the transform is the vector re[k*lanes .. +lanes)
// (and the same in im), so lane j of every element belongs to signal j. In the conv ops the
// lanes are adjacent channels, contiguous in the (batch, seq, channels) layout: loading a time
// step of `lanes` channels is a single vector load, with no gathers or transposes.
//
// Decimation in frequency with radix-4 stages (one radix-2 stage on top when log2 n is odd).
// Large transforms recurse depth-first (one stage over the whole array, then each quarter on
// its own) so the sub-transforms soon fit in L1/L2; small ones run stage by stage.
// forward_scrambled leaves the spectrum in digit-reversed order (order() maps positions to
// frequencies); inverse_scrambled undoes exactly that, so a convolution never permutes.
// Both are unscaled: inverse(forward(x)) = n x. Twiddles are computed once per plan, in double.
// A plan is read-only after construction, so threads may share one.
#pragma once
#include <algorithm>
#include <bit>
#include <complex>
#include <cstdint>
#include <numbers>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../../config.hpp"

namespace hyena::backend {

namespace channel_fft_detail {

// a*b + c and a*b - c for V = xsimd::batch<T> (one FMA) or a plain scalar.
template <class V>
inline V fmadd(const V& a, const V& b, const V& c) {
  if constexpr (std::is_arithmetic_v<V>) return a * b + c;
  else return xsimd::fma(a, b, c);
}
template <class V>
inline V fmsub(const V& a, const V& b, const V& c) {
  if constexpr (std::is_arithmetic_v<V>) return a * b - c;
  else return xsimd::fms(a, b, c);
}
template <class V, class T>
inline V load(const T* p) {
  if constexpr (std::is_arithmetic_v<V>) return *p;
  else return V::load_unaligned(p);
}
template <class V, class T>
inline void store(const V& v, T* p) {
  if constexpr (std::is_arithmetic_v<V>) *p = v;
  else v.store_unaligned(p);
}

}  // namespace channel_fft_detail

template <class T, class V = xsimd::batch<T>>
class channel_fft {
 public:
  static constexpr index_t lanes = index_t(sizeof(V) / sizeof(T));
  // A position pair {p, q} of the scrambled spectrum holding frequencies k and n-k (mod n).
  struct mirror_pair {
    std::uint32_t p, q;
  };

  explicit channel_fft(index_t n) : n_(n) {
    HYENA_CHECK(n >= 1 && std::has_single_bit(std::uint64_t(n)) && n <= (index_t(1) << 31),
                "channel_fft: size ", n, " is not a power of two in [1, 2^31]");
    // Twiddles w_m^{j*r} = exp(-2 pi i j r / m) for every stage size m, r = 1..radix-1.
    tw_off_.assign(64, 0);
    for (index_t m = n; m >= 2; m /= radix(m)) {
      const index_t R = radix(m), q = m / R;
      tw_off_[std::countr_zero(std::uint64_t(m))] = index_t(tw_.size());
      for (index_t j = 0; j < q; ++j)
        for (index_t r = 1; r < R; ++r) {
          const auto w = std::polar(1.0, -2.0 * std::numbers::pi * double(j * r) / double(m));
          tw_.push_back(T(w.real()));
          tw_.push_back(T(w.imag()));
        }
    }
    order_.resize(n);
    fill_order(n, 0, 0, 1);
    std::vector<index_t> pos(n);
    for (index_t p = 0; p < n; ++p) pos[order_[p]] = p;
    for (index_t p = 0; p < n; ++p) {
      const index_t q = pos[(n - order_[p]) % n];
      if (p <= q) pairs_.push_back({std::uint32_t(p), std::uint32_t(q)});
    }
  }

  index_t size() const { return n_; }
  // order()[p]: the frequency that forward_scrambled leaves at position p.
  const std::vector<index_t>& order() const { return order_; }
  // The n/2 + 1 (1 when n = 1) pairs {p, q}, p <= q, of positions holding frequencies k and
  // n-k; p == q for k = 0 and k = n/2. What a real-signal trick needs to walk half the spectrum.
  const std::vector<mirror_pair>& mirror_pairs() const { return pairs_; }

  // In place; the output is in scrambled order. upper_half_zero: elements [n/2, n) are taken
  // as zero and never read (a zero-padded signal need not write them).
  void forward_scrambled(T* re, T* im, bool upper_half_zero = false) const {
    if (n_ > 1) forward_rec(n_, re, im, upper_half_zero);
  }
  // In place, scrambled input, natural-order output. lower_half_only: only elements [0, n/2)
  // of the result are computed (the rest is left undefined), all a causal conv reads.
  void inverse_scrambled(T* re, T* im, bool lower_half_only = false) const {
    if (n_ > 1) inverse_rec(n_, re, im, lower_half_only);
  }

  // Natural order in and out (they permute through a temporary: for tests, not hot loops).
  void forward(T* re, T* im) const {
    forward_scrambled(re, im);
    permute(re, im, true);
  }
  void inverse(T* re, T* im) const {
    permute(re, im, false);
    inverse_scrambled(re, im);
  }

 private:
  static index_t radix(index_t m) { return (std::countr_zero(std::uint64_t(m)) & 1) ? 2 : 4; }
  // Up to 16 KB (half of L1) a transform runs stage by stage; above, it recurses.
  static constexpr index_t leaf = std::max<index_t>(4, index_t(16384 / sizeof(V)));

  void fill_order(index_t m, index_t pos, index_t base, index_t stride) {
    if (m == 1) {
      order_[pos] = base;
      return;
    }
    // Block r of a DIF stage holds the frequencies R*k + r of the stage's input.
    const index_t R = radix(m), q = m / R;
    for (index_t r = 0; r < R; ++r) fill_order(q, pos + r * q, base + r * stride, stride * R);
  }

  // natural -> scrambled position (to_natural = false) or back.
  void permute(T* re, T* im, bool to_natural) const {
    std::vector<T> r(re, re + n_ * lanes), i(im, im + n_ * lanes);
    for (index_t p = 0; p < n_; ++p) {
      const index_t dst = to_natural ? order_[p] : p, src = to_natural ? p : order_[p];
      std::copy(r.begin() + src * lanes, r.begin() + (src + 1) * lanes, re + dst * lanes);
      std::copy(i.begin() + src * lanes, i.begin() + (src + 1) * lanes, im + dst * lanes);
    }
  }

  void forward_rec(index_t m, T* re, T* im, bool hz) const {
    if (m <= leaf) {
      // Stage by stage: `count` blocks of size s.
      for (index_t s = m, count = 1; s >= 2; count *= radix(s), s /= radix(s))
        stage(s, count, re, im, hz && s == m, false);
      return;
    }
    stage(m, 1, re, im, hz, false);
    const index_t R = radix(m), q = m / R;
    for (index_t r = 0; r < R; ++r) forward_rec(q, re + r * q * lanes, im + r * q * lanes, false);
  }
  void inverse_rec(index_t m, T* re, T* im, bool lo) const {
    if (m <= leaf) {
      index_t sizes[64], k = 0;
      for (index_t s = m; s >= 2; s /= radix(s)) sizes[k++] = s;
      while (k-- > 0) stage(sizes[k], m / sizes[k], re, im, lo && sizes[k] == m, true);
      return;
    }
    const index_t R = radix(m), q = m / R;
    for (index_t r = 0; r < R; ++r) inverse_rec(q, re + r * q * lanes, im + r * q * lanes, false);
    stage(m, 1, re, im, lo, true);
  }

  // One stage of size s on `count` consecutive blocks. flag: forward = upper half zero,
  // inverse = only the lower half of the output wanted.
  void stage(index_t s, index_t count, T* re, T* im, bool flag, bool inverse) const {
    const T* w = tw_.data() + tw_off_[std::countr_zero(std::uint64_t(s))];
    for (index_t b = 0; b < count; ++b) {
      T* r = re + b * s * lanes;
      T* i = im + b * s * lanes;
      if (radix(s) == 2) {
        if (inverse) (flag ? dit2<true>(s, r, i, w) : dit2<false>(s, r, i, w));
        else (flag ? dif2<true>(s, r, i, w) : dif2<false>(s, r, i, w));
      } else if (s == 4) {
        // Twiddles are all 1: the bulk of the last (first, inverse) stage.
        if (inverse) (flag ? butterfly4<true, true, false>(1, r, i, w) : butterfly4<true, false, false>(1, r, i, w));
        else (flag ? butterfly4<false, true, false>(1, r, i, w) : butterfly4<false, false, false>(1, r, i, w));
      } else {
        if (inverse) (flag ? butterfly4<true, true, true>(s / 4, r, i, w) : butterfly4<true, false, true>(s / 4, r, i, w));
        else (flag ? butterfly4<false, true, true>(s / 4, r, i, w) : butterfly4<false, false, true>(s / 4, r, i, w));
      }
    }
  }

  // Radix-2 DIF: y0 = x0 + x1, y1 = (x0 - x1) w^j. HZ: x1 = 0.
  template <bool HZ>
  static void dif2(index_t s, T* re, T* im, const T* w) {
    using namespace channel_fft_detail;
    const index_t q = s / 2, o = q * lanes;
    for (index_t j = 0; j < q; ++j) {
      T* r = re + j * lanes;
      T* i = im + j * lanes;
      V ar = load<V>(r), ai = load<V>(i), br(T(0)), bi(T(0));
      if constexpr (!HZ) br = load<V>(r + o), bi = load<V>(i + o);
      const V dr = ar - br, di = ai - bi, wr(w[2 * j]), wi(w[2 * j + 1]);
      store<V>(ar + br, r);
      store<V>(ai + bi, i);
      store<V>(fmsub(dr, wr, di * wi), r + o);
      store<V>(fmadd(dr, wi, di * wr), i + o);
    }
  }
  // Its adjoint: b1 = x1 conj(w^j); y0 = x0 + b1, y1 = x0 - b1. LO: y1 not needed.
  template <bool LO>
  static void dit2(index_t s, T* re, T* im, const T* w) {
    using namespace channel_fft_detail;
    const index_t q = s / 2, o = q * lanes;
    for (index_t j = 0; j < q; ++j) {
      T* r = re + j * lanes;
      T* i = im + j * lanes;
      const V ar = load<V>(r), ai = load<V>(i), xr = load<V>(r + o), xi = load<V>(i + o);
      const V wr(w[2 * j]), wi(w[2 * j + 1]);
      const V br = fmadd(xr, wr, xi * wi), bi = fmsub(xi, wr, xr * wi);
      store<V>(ar + br, r);
      store<V>(ai + bi, i);
      if constexpr (!LO) {
        store<V>(ar - br, r + o);
        store<V>(ai - bi, i + o);
      }
    }
  }

  // Radix-4 butterflies over j < q on one block of size 4q.
  // Forward (DIF): y_r = w^{jr} sum_l x_l (-i)^{lr}, with x_l = block[j + l q], y_r -> block[j + r q].
  // Inverse: the adjoint, b_r = block[j + r q] conj(w^{jr}), x_l = sum_r i^{lr} b_r.
  // FLAG: forward, x2 = x3 = 0 (not read); inverse, only x0 and x1 stored. TW: apply twiddles.
  template <bool INV, bool FLAG, bool TW>
  static void butterfly4(index_t q, T* re, T* im, const T* w) {
    using namespace channel_fft_detail;
    const index_t o1 = q * lanes, o2 = 2 * o1, o3 = 3 * o1;
    for (index_t j = 0; j < q; ++j) {
      T* r = re + j * lanes;
      T* i = im + j * lanes;
      const T* wj = w + 6 * j;
      V x0r = load<V>(r), x0i = load<V>(i), x1r = load<V>(r + o1), x1i = load<V>(i + o1);
      V x2r(T(0)), x2i(T(0)), x3r(T(0)), x3i(T(0));
      if constexpr (INV || !FLAG) {
        x2r = load<V>(r + o2), x2i = load<V>(i + o2), x3r = load<V>(r + o3), x3i = load<V>(i + o3);
      }
      if constexpr (INV && TW) {
        // Multiply by conj(w^{jr}) on the way in.
        auto cmulc = [](V& xr, V& xi, const T* t) {
          const V wr(t[0]), wi(t[1]);
          const V yr = fmadd(xr, wr, xi * wi), yi = fmsub(xi, wr, xr * wi);
          xr = yr, xi = yi;
        };
        cmulc(x1r, x1i, wj), cmulc(x2r, x2i, wj + 2), cmulc(x3r, x3i, wj + 4);
      }
      const V s02r = x0r + x2r, s02i = x0i + x2i, d02r = x0r - x2r, d02i = x0i - x2i;
      const V s13r = x1r + x3r, s13i = x1i + x3i, d13r = x1r - x3r, d13i = x1i - x3i;
      if constexpr (INV) {
        // x1 = d02 + i d13, x3 = d02 - i d13.
        store<V>(s02r + s13r, r);
        store<V>(s02i + s13i, i);
        store<V>(d02r - d13i, r + o1);
        store<V>(d02i + d13r, i + o1);
        if constexpr (!FLAG) {
          store<V>(s02r - s13r, r + o2);
          store<V>(s02i - s13i, i + o2);
          store<V>(d02r + d13i, r + o3);
          store<V>(d02i - d13r, i + o3);
        }
      } else {
        // y1 = d02 - i d13, y3 = d02 + i d13, then the twiddles on the way out.
        V y1r = d02r + d13i, y1i = d02i - d13r, y2r = s02r - s13r, y2i = s02i - s13i;
        V y3r = d02r - d13i, y3i = d02i + d13r;
        if constexpr (TW) {
          auto cmul = [](V& xr, V& xi, const T* t) {
            const V wr(t[0]), wi(t[1]);
            const V yr = fmsub(xr, wr, xi * wi), yi = fmadd(xr, wi, xi * wr);
            xr = yr, xi = yi;
          };
          cmul(y1r, y1i, wj), cmul(y2r, y2i, wj + 2), cmul(y3r, y3i, wj + 4);
        }
        store<V>(s02r + s13r, r);
        store<V>(s02i + s13i, i);
        store<V>(y1r, r + o1);
        store<V>(y1i, i + o1);
        store<V>(y2r, r + o2);
        store<V>(y2i, i + o2);
        store<V>(y3r, r + o3);
        store<V>(y3i, i + o3);
      }
    }
  }

  index_t n_;
  std::vector<T> tw_;
  std::vector<index_t> tw_off_, order_;
  std::vector<mirror_pair> pairs_;
};

}  // namespace hyena::backend
