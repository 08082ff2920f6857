// cpu_ref/filter.hpp: the small ops of the Hyena implicit filter and recurrence, as plain
// loops (the oracle). Matrices are row-major; reductions accumulate in double.
//   sin:          y[r,c] = sin(freq[c] x[r,c])                  (the filter FFN's activation)
//   decay window: h[c,n] = k[n,c] exp(-|delta_c| n t_step)      (transposes (seq, C) -> (C, seq))
//                 with delta_c = linspace(delta_first, delta_last, C)[c]
//   scale_add:    y[r,c] += scale[c] x[r,c]                     (the D "bias" skip term)
//   copy_strided: a 2-D block copy between row strides           (splitting channel blocks)
#pragma once
#include <cmath>

#include "../context.hpp"

namespace hyena::backend {

struct ref_filter_ops {
  template <class T>
  static void sin_forward(host_context&, index_t rows, index_t cols, const T* freq, const T* x, T* y) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < cols; ++c) y[r * cols + c] = T(std::sin(double(freq[c]) * double(x[r * cols + c])));
  }

  // dx = dy freq cos(freq x) (assigned; skipped when null, may alias dy);
  // dfreq[c] += sum_r dy x cos(freq x) (skipped when null).
  template <class T>
  static void sin_backward(host_context&, index_t rows, index_t cols, const T* freq, const T* x, const T* dy,
                           T* dx, T* dfreq) {
    for (index_t c = 0; c < cols; ++c) {
      double acc = 0;
      for (index_t r = 0; r < rows; ++r) {
        double xv = x[r * cols + c], g = dy[r * cols + c], cs = std::cos(double(freq[c]) * xv);
        acc += g * xv * cs;
        if (dx) dx[r * cols + c] = T(g * double(freq[c]) * cs);
      }
      if (dfreq) dfreq[c] += T(acc);
    }
  }

  // |delta_c| for channel c of `channels`, spread linearly from delta_first to delta_last.
  static double decay_rate(index_t c, index_t channels, double delta_first, double delta_last) {
    double f = channels > 1 ? double(c) / double(channels - 1) : 0.0;
    return std::abs(delta_first + (delta_last - delta_first) * f);
  }

  static void check_window(index_t seq, index_t channels, index_t h_stride) {
    HYENA_CHECK(seq >= 0 && channels >= 0 && h_stride >= seq, "decay_window: bad sizes seq ", seq, ", channels ",
                channels, ", filter row stride ", h_stride);
  }

  // k (seq, channels) -> h (channels, h_stride): h[c,n] = k[n,c] exp(-|delta_c| n t_step).
  template <class T>
  static void decay_window_forward(host_context&, index_t seq, index_t channels, double t_step, double delta_first,
                                   double delta_last, const T* k, T* h, index_t h_stride) {
    check_window(seq, channels, h_stride);
    for (index_t c = 0; c < channels; ++c) {
      double a = decay_rate(c, channels, delta_first, delta_last);
      for (index_t n = 0; n < seq; ++n)
        h[c * h_stride + n] = T(double(k[n * channels + c]) * std::exp(-a * double(n) * t_step));
    }
  }

  // dk[n,c] = dh[c,n] exp(-|delta_c| n t_step) (assigned).
  template <class T>
  static void decay_window_backward(host_context&, index_t seq, index_t channels, double t_step, double delta_first,
                                    double delta_last, const T* dh, index_t h_stride, T* dk) {
    check_window(seq, channels, h_stride);
    for (index_t c = 0; c < channels; ++c) {
      double a = decay_rate(c, channels, delta_first, delta_last);
      for (index_t n = 0; n < seq; ++n)
        dk[n * channels + c] = T(double(dh[c * h_stride + n]) * std::exp(-a * double(n) * t_step));
    }
  }

  // y[r,c] += scale[c] x[r,c]
  template <class T>
  static void scale_add(host_context&, index_t rows, index_t cols, const T* scale, const T* x, T* y) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < cols; ++c) y[r * cols + c] += scale[c] * x[r * cols + c];
  }

  // dscale[c] += sum_r x[r,c] dy[r,c]
  template <class T>
  static void scale_grad(host_context&, index_t rows, index_t cols, const T* x, const T* dy, T* dscale) {
    for (index_t c = 0; c < cols; ++c) {
      double acc = 0;
      for (index_t r = 0; r < rows; ++r) acc += double(x[r * cols + c]) * double(dy[r * cols + c]);
      dscale[c] += T(acc);
    }
  }

  // dst[r*dst_ld + c] = src[r*src_ld + c] for r < rows, c < cols.
  template <class T>
  static void copy_strided(host_context&, index_t rows, index_t cols, const T* src, index_t src_ld, T* dst,
                           index_t dst_ld) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < cols; ++c) dst[r * dst_ld + c] = src[r * src_ld + c];
  }
};

}  // namespace hyena::backend
