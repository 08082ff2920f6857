// channel_fft: the lane-parallel FFT against a naive double-precision DFT (forward and
// inverse, every lane its own signal), the round trip, the zero-padding / half-output
// shortcuts of the scrambled calls, the mirror pairs, several vector widths, bad sizes.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <limits>
#include <vector>

#include <hyena/backend/cpu/channel_fft.hpp>
#include <hyena/tensor/random.hpp>

using namespace hyena;
using backend::channel_fft;

namespace {

using cd = std::complex<double>;

// Naive DFT of lane `lane` at frequency k, sign -1 (forward) or +1 (inverse); roots[t] = e^{-2 pi i t/n}.
template <class T, index_t W>
cd naive_dft(const std::vector<T>& re, const std::vector<T>& im, index_t n, index_t lane, index_t k, int sign,
             const std::vector<cd>& roots) {
  cd acc = 0;
  for (index_t t = 0; t < n; ++t) {
    cd w = roots[(k * t) % n];
    if (sign > 0) w = std::conj(w);
    acc += cd(double(re[t * W + lane]), double(im[t * W + lane])) * w;
  }
  return acc;
}

// max |got - want| over the checked frequencies / max |want|: forward then inverse, every lane.
template <class T, class V>
void check_size(index_t n, double tol) {
  using F = channel_fft<T, V>;
  constexpr index_t W = F::lanes;
  rng r(n * 7 + W);
  std::vector<T> re(n * W), im(n * W);
  for (index_t i = 0; i < n * W; ++i) re[i] = T(r.normal() + 0.1), im[i] = T(r.normal() - 0.2);
  std::vector<cd> roots(n);
  for (index_t t = 0; t < n; ++t) roots[t] = std::polar(1.0, -2.0 * M_PI * double(t) / double(n));
  // All frequencies for small n, a spread of them for large n (the naive DFT is O(n) each).
  std::vector<index_t> ks;
  if (n <= 1024) for (index_t k = 0; k < n; ++k) ks.push_back(k);
  else {
    for (index_t k : {index_t(0), index_t(1), n / 4, n / 2 - 1, n / 2, n / 2 + 1, n - 1}) ks.push_back(k);
    for (int j = 0; j < 24; ++j) ks.push_back(index_t(r.uniform(0, double(n))) % n);
  }
  F fft(n);
  for (int sign : {-1, 1}) {
    INFO("n ", n, " lanes ", W, sign < 0 ? " forward" : " inverse");
    std::vector<cd> want;
    for (index_t k : ks)
      for (index_t l = 0; l < W; ++l) want.push_back(naive_dft<T, W>(re, im, n, l, k, sign, roots));
    std::vector<T> gr = re, gi = im;
    if (sign < 0) fft.forward(gr.data(), gi.data());
    else fft.inverse(gr.data(), gi.data());
    double num = 0, den = 1e-300;
    for (std::size_t a = 0; a < ks.size(); ++a)
      for (index_t l = 0; l < W; ++l) {
        const cd g{double(gr[ks[a] * W + l]), double(gi[ks[a] * W + l])}, w = want[a * W + l];
        if (!std::isfinite(g.real()) || !std::isfinite(g.imag())) num = INFINITY;
        num = std::max(num, std::abs(g - w));
        den = std::max(den, std::abs(w));
      }
    CHECK(num / den < tol);
  }
  // inverse(forward(x)) = n x.
  std::vector<T> gr = re, gi = im;
  fft.forward(gr.data(), gi.data());
  fft.inverse(gr.data(), gi.data());
  double err = 0, den = 1e-300;
  for (index_t i = 0; i < n * W; ++i) {
    err = std::max({err, std::abs(double(gr[i]) / double(n) - double(re[i])),
                    std::abs(double(gi[i]) / double(n) - double(im[i]))});
    den = std::max({den, std::abs(double(re[i])), std::abs(double(im[i]))});
  }
  INFO("round trip n ", n, " lanes ", W);
  CHECK(err / den < tol);
}

template <class T, class V>
void check_all_sizes(double tol) {
  for (index_t n = 1; n <= (index_t(1) << 15); n *= 2) check_size<T, V>(n, tol);
}

// forward_scrambled(upper_half_zero) never reads the upper half and equals the full transform
// of the zero-padded signal; inverse_scrambled(lower_half_only) gives the lower half of n x.
template <class T>
void check_shortcuts(index_t n) {
  using F = channel_fft<T>;
  constexpr index_t W = F::lanes;
  rng r(n);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> re(n * W, T(0)), im(n * W, T(0));
  for (index_t i = 0; i < n / 2 * W; ++i) re[i] = T(r.normal()), im[i] = T(r.normal());
  std::vector<T> pr = re, pi = im, fr = re, fi = im;
  std::fill(pr.begin() + n / 2 * W, pr.end(), nan);
  std::fill(pi.begin() + n / 2 * W, pi.end(), nan);
  F fft(n);
  fft.forward_scrambled(pr.data(), pi.data(), true);
  fft.forward_scrambled(fr.data(), fi.data(), false);
  double err = 0;
  for (index_t i = 0; i < n * W; ++i)
    err = std::max({err, std::abs(double(pr[i]) - double(fr[i])), std::abs(double(pi[i]) - double(fi[i]))});
  INFO("n ", n);
  CHECK(err < 1e-4);  // NaN fails too
  fft.inverse_scrambled(pr.data(), pi.data(), true);
  err = 0;
  for (index_t i = 0; i < n / 2 * W; ++i)
    err = std::max({err, std::abs(double(pr[i]) / double(n) - double(re[i])),
                    std::abs(double(pi[i]) / double(n) - double(im[i]))});
  CHECK(err < 1e-5);
}

}  // namespace

TEST_CASE("channel_fft: float, native width, matches a naive DFT for n = 1 .. 2^15") {
  check_all_sizes<float, xsimd::batch<float>>(3e-6);
}

TEST_CASE("channel_fft: double, native width") { check_all_sizes<double, xsimd::batch<double>>(1e-13); }

TEST_CASE("channel_fft: other widths (scalar lanes, and narrower SIMD where available)") {
  check_all_sizes<float, float>(3e-6);
  check_all_sizes<double, double>(1e-13);
#if XSIMD_WITH_AVX2
  check_all_sizes<float, xsimd::batch<float, xsimd::avx2>>(3e-6);
#endif
#if XSIMD_WITH_SSE2
  check_all_sizes<double, xsimd::batch<double, xsimd::sse2>>(1e-13);
#endif
}

TEST_CASE("channel_fft: zero-padded input and half output in scrambled order") {
  for (index_t n : {2, 4, 8, 32, 128, 4096, 16384}) {
    check_shortcuts<float>(n);
    check_shortcuts<double>(n);
  }
}

TEST_CASE("channel_fft: mirror pairs hold frequencies k and n-k, each position once") {
  for (index_t n : {1, 2, 4, 8, 64, 512, 2048}) {
    channel_fft<float> fft(n);
    const auto& order = fft.order();
    const auto& pairs = fft.mirror_pairs();
    CHECK(index_t(pairs.size()) == (n == 1 ? 1 : n / 2 + 1));
    std::vector<int> seen(n, 0);
    for (auto [p, q] : pairs) {
      CHECK(p <= q);
      CHECK((order[p] + order[q]) % n == 0);
      seen[p]++;
      if (q != p) seen[q]++;
    }
    for (index_t p = 0; p < n; ++p) CHECK(seen[p] == 1);
    std::vector<int> freq(n, 0);
    for (index_t p = 0; p < n; ++p) freq[order[p]]++;
    for (index_t k = 0; k < n; ++k) CHECK(freq[k] == 1);
  }
}

TEST_CASE("channel_fft: sizes that are not powers of two throw hyena::error") {
  CHECK_THROWS_AS(channel_fft<float>(0), hyena::error);
  CHECK_THROWS_AS(channel_fft<float>(3), hyena::error);
  CHECK_THROWS_AS(channel_fft<float>(96), hyena::error);
  CHECK_THROWS_AS(channel_fft<double>(-4), hyena::error);
}
