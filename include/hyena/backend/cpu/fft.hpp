// cpu/fft.hpp: the real FFT the cpu backend's long convolutions use.
//
// A thin wrapper around Eigen's header-only FFT (kissfft) so a faster library (pocketfft,
// FFTW, MKL) can replace it behind the same three calls. One object keeps its plans and
// scratch between calls and is NOT thread-safe: give every thread its own.
#pragma once
#include <complex>
#include <unsupported/Eigen/FFT>

#include "../../config.hpp"

namespace hyena::backend {

template <class T>
class real_fft {
 public:
  using complex = std::complex<T>;

  real_fft() { fft_.SetFlag(Eigen::FFT<T>::HalfSpectrum); fft_.SetFlag(Eigen::FFT<T>::Unscaled); }

  // The transform size for a linear (not circular) convolution of two length-`len`
  // signals: at least 2*len, a multiple of 4 (kissfft's fast real path) whose other
  // factors are 2, 3 and 5 (kissfft's fast radices).
  static index_t conv_size(index_t len) {
    index_t m = std::max<index_t>(1, (len + 1) / 2);
    while (!smooth(m)) ++m;
    return 4 * m;
  }
  static index_t spectrum_size(index_t n) { return n / 2 + 1; }

  // n reals -> n/2 + 1 complex (the half spectrum).
  void forward(const T* in, complex* out, index_t n) { fft_.fwd(out, in, n); }
  // n/2 + 1 complex -> n reals, NOT divided by n (callers fold 1/n into a filter).
  void inverse(const complex* in, T* out, index_t n) { fft_.inv(out, in, n); }

 private:
  static bool smooth(index_t m) {
    for (index_t p : {2, 3, 5})
      while (m % p == 0) m /= p;
    return m == 1;
  }
  Eigen::FFT<T> fft_;
};

}  // namespace hyena::backend
