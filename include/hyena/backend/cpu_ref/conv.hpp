// cpu_ref/conv.hpp: causal depthwise convolutions as direct loops (the oracle).
//
// Activations are (batch, seq, channels) row-major; every channel is filtered on its own.
//   short conv:  y[b,t,c] = bias[c] + sum_{k<K} w[c,k] x[b, t-(K-1)+k, c]   (w is (C, K), as
//                PyTorch's Conv1d(groups=C, padding=K-1) weight (C,1,K), first `seq` outputs)
//   causal conv: y[b,t,c] = sum_{s<=t} h[c,s] x[b,t-s,c]                      (h is (C, h_stride),
//                the long Hyena filter; only h[c, 0..seq-1] is read)
// Inputs before t = 0 are zero. Reductions accumulate in double so the oracle stays accurate.
#pragma once
#include "../context.hpp"

namespace hyena::backend {

struct ref_conv_ops {
  // Size checks shared with the fast backends (the ops only see raw pointers).
  static void check_short_conv(index_t batch, index_t seq, index_t channels, index_t kernel) {
    HYENA_CHECK(batch >= 0 && seq >= 0 && channels >= 0 && kernel >= 1, "short_conv: bad sizes batch ", batch,
                ", seq ", seq, ", channels ", channels, ", kernel ", kernel);
  }
  static void check_causal_conv(index_t batch, index_t seq, index_t channels, index_t h_stride) {
    HYENA_CHECK(batch >= 0 && seq >= 0 && channels >= 0, "causal_conv: bad sizes batch ", batch, ", seq ", seq,
                ", channels ", channels);
    HYENA_CHECK(h_stride >= seq, "causal_conv: filter row stride ", h_stride, " is shorter than seq ", seq);
  }

  template <class T>
  static void short_conv_forward(host_context&, index_t batch, index_t seq, index_t channels, index_t kernel,
                                 const T* x, const T* weight, const T* bias, T* y) {
    check_short_conv(batch, seq, channels, kernel);
    for (index_t b = 0; b < batch; ++b)
      for (index_t t = 0; t < seq; ++t)
        for (index_t c = 0; c < channels; ++c) {
          double acc = bias ? double(bias[c]) : 0.0;
          for (index_t k = 0; k < kernel; ++k) {
            index_t s = t - (kernel - 1) + k;
            if (s >= 0) acc += double(weight[c * kernel + k]) * double(x[(b * seq + s) * channels + c]);
          }
          y[(b * seq + t) * channels + c] = T(acc);
        }
  }

  // dx (assigned, skipped when null), dweight and dbias (accumulated, skipped when null).
  template <class T>
  static void short_conv_backward(host_context&, index_t batch, index_t seq, index_t channels, index_t kernel,
                                  const T* x, const T* weight, const T* dy, T* dx, T* dweight, T* dbias) {
    check_short_conv(batch, seq, channels, kernel);
    auto at = [&](index_t b, index_t t, index_t c) { return (b * seq + t) * channels + c; };
    if (dx)
      for (index_t b = 0; b < batch; ++b)
        for (index_t s = 0; s < seq; ++s)
          for (index_t c = 0; c < channels; ++c) {
            // x[s] feeds y[t] through tap k with t = s + (K-1) - k.
            double acc = 0;
            for (index_t k = 0; k < kernel; ++k) {
              index_t t = s + (kernel - 1) - k;
              if (t < seq) acc += double(weight[c * kernel + k]) * double(dy[at(b, t, c)]);
            }
            dx[at(b, s, c)] = T(acc);
          }
    for (index_t c = 0; c < channels; ++c) {
      if (dweight)
        for (index_t k = 0; k < kernel; ++k) {
          double acc = 0;
          for (index_t b = 0; b < batch; ++b)
            for (index_t t = 0; t < seq; ++t) {
              index_t s = t - (kernel - 1) + k;
              if (s >= 0) acc += double(dy[at(b, t, c)]) * double(x[at(b, s, c)]);
            }
          dweight[c * kernel + k] += T(acc);
        }
      if (dbias) {
        double acc = 0;
        for (index_t b = 0; b < batch; ++b)
          for (index_t t = 0; t < seq; ++t) acc += double(dy[at(b, t, c)]);
        dbias[c] += T(acc);
      }
    }
  }

  template <class T>
  static void causal_conv_forward(host_context&, index_t batch, index_t seq, index_t channels, const T* x,
                                  const T* h, index_t h_stride, T* y) {
    check_causal_conv(batch, seq, channels, h_stride);
    for (index_t b = 0; b < batch; ++b)
      for (index_t t = 0; t < seq; ++t)
        for (index_t c = 0; c < channels; ++c) {
          double acc = 0;
          for (index_t s = 0; s <= t; ++s)
            acc += double(h[c * h_stride + s]) * double(x[(b * seq + t - s) * channels + c]);
          y[(b * seq + t) * channels + c] = T(acc);
        }
  }

  // dx[b,u,c] = sum_{t>=u} h[c,t-u] dy[b,t,c] (assigned, skipped when null);
  // dh[c,s] += sum_b sum_{t>=s} dy[b,t,c] x[b,t-s,c] (accumulated, skipped when null).
  template <class T>
  static void causal_conv_backward(host_context&, index_t batch, index_t seq, index_t channels, const T* x,
                                   const T* h, index_t h_stride, const T* dy, T* dx, T* dh) {
    check_causal_conv(batch, seq, channels, h_stride);
    auto at = [&](index_t b, index_t t, index_t c) { return (b * seq + t) * channels + c; };
    if (dx)
      for (index_t b = 0; b < batch; ++b)
        for (index_t u = 0; u < seq; ++u)
          for (index_t c = 0; c < channels; ++c) {
            double acc = 0;
            for (index_t t = u; t < seq; ++t) acc += double(h[c * h_stride + t - u]) * double(dy[at(b, t, c)]);
            dx[at(b, u, c)] = T(acc);
          }
    if (dh)
      for (index_t c = 0; c < channels; ++c)
        for (index_t s = 0; s < seq; ++s) {
          double acc = 0;
          for (index_t b = 0; b < batch; ++b)
            for (index_t t = s; t < seq; ++t) acc += double(dy[at(b, t, c)]) * double(x[at(b, t - s, c)]);
          dh[c * h_stride + s] += T(acc);
        }
  }
};

}  // namespace hyena::backend
