// cpu_ref/alignment.hpp: what distilling attention into a Hyena operator compares, as plain
// loops in double (the oracle).
//
//   causal_attention_probs      the attention matrices P (batch, heads, L, L) of a forward,
//                               rebuilt from its fused qkv rows and log-sum-exps
//   attention_lag_sums          sum over batch and query position of P[t, t-k], per head and
//                               lag k: the numerator of the best Toeplitz approximation
//   hyena_attention_alignment   || M - P ||_F^2 between an order-2 Hyena operator's mixing
//                               matrices M and the attention matrices of the head each
//                               channel belongs to, with its gradients
//
// The mixing matrix of channel c (an order-2 Hyena operator, nn/hyena.hpp) on batch row b:
//   M[t, s] = x0[t] (h[t - s] + [t == s] bias) x1[s]   for s <= t, 0 above,
// so that (gated output)_t = sum_s M[t, s] v[s] (MOHAWK's "matrix orientation", Bick et al.
// 2024, with a Toeplitz mixer). It is never formed: the sums run over (t, s) directly.
#pragma once
#include <cmath>
#include <vector>

#include "../context.hpp"

namespace hyena::backend {

struct ref_alignment_ops {
  // P[b, h, t, s] = exp(scale q_t . k_s - lse[b, h, t]) for s <= t, 0 for s > t; qkv rows as
  // in causal_attention_forward (q heads, then k and v kv heads, head_dim each; query head h
  // reads kv head h / (heads / kv_heads)); lse (batch, heads, seq) from that forward.
  template <class T>
  static void causal_attention_probs(host_context&, index_t batch, index_t seq, index_t heads, index_t kv_heads,
                                     index_t head_dim, T scale, const T* qkv, index_t qkv_row, const T* lse,
                                     T* probs) {
    const index_t D = head_dim, group = heads / kv_heads;
    for (index_t b = 0; b < batch; ++b)
      for (index_t h = 0; h < heads; ++h) {
        const index_t kc = (heads + h / group) * D;
        for (index_t t = 0; t < seq; ++t) {
          const T* q = qkv + (b * seq + t) * qkv_row + h * D;
          const double l = double(lse[(b * heads + h) * seq + t]);
          T* p = probs + ((b * heads + h) * seq + t) * seq;
          for (index_t s = 0; s < seq; ++s) {
            if (s > t) {
              p[s] = T(0);
              continue;
            }
            const T* k = qkv + (b * seq + s) * qkv_row + kc;
            double d = 0;
            for (index_t i = 0; i < D; ++i) d += double(q[i]) * double(k[i]);
            p[s] = static_cast<T>(std::exp(double(scale) * d - l));
          }
        }
      }
  }

  // sums[h, k] += sum_{b, t >= k} probs[b, h, t, t - k]   (probs (batch, heads, seq, seq)).
  template <class T>
  static void attention_lag_sums(host_context&, index_t batch, index_t heads, index_t seq, const T* probs,
                                 double* sums) {
    for (index_t h = 0; h < heads; ++h)
      for (index_t k = 0; k < seq; ++k) {
        double s = 0;
        for (index_t b = 0; b < batch; ++b)
          for (index_t t = k; t < seq; ++t) s += double(probs[((b * heads + h) * seq + t) * seq + t - k]);
        sums[h * seq + k] += s;
      }
  }

  // Returns sum over (b, c, t >= s) of (M[b, c, t, s] - P[b, c / head_dim, t, s])^2 with M
  // as in the header, x0 and x1 (batch, seq, channels), h (channels, seq) with row stride
  // ldh, bias (channels), probs (batch, channels / head_dim, seq, seq). With r the residual
  // M - P and g = grad_scale * 2 r, when the pointers are non-null:
  //   d_x0[b, t, c] = sum_s g h' x1[s],  d_x1[b, s, c] = sum_t g x0[t] h'   (assigned)
  //   d_h[c, k] = sum_{b, t} g x0[t] x1[t - k]                             (assigned)
  //   d_bias[c] += sum_{b, t} g x0[t] x1[t]                                (accumulated)
  // where h' = h[t - s] + [t == s] bias.
  template <class T>
  static double hyena_attention_alignment(host_context&, index_t batch, index_t seq, index_t channels,
                                          index_t head_dim, const T* x0, const T* x1, const T* h, index_t ldh,
                                          const T* bias, const T* probs, T* d_x0, T* d_x1, T* d_h, T* d_bias,
                                          T grad_scale) {
    const index_t C = channels, heads = channels / head_dim;
    double total = 0;
    std::vector<double> dh(seq);
    for (index_t c = 0; c < C; ++c) {
      std::fill(dh.begin(), dh.end(), 0.0);
      double dbias = 0;
      for (index_t b = 0; b < batch; ++b) {
        const T* P = probs + (b * heads + c / head_dim) * seq * seq;
        auto X0 = [&](index_t t) { return double(x0[(b * seq + t) * C + c]); };
        auto X1 = [&](index_t t) { return double(x1[(b * seq + t) * C + c]); };
        auto H = [&](index_t t, index_t s) { return double(h[c * ldh + t - s]) + (t == s ? double(bias[c]) : 0.0); };
        for (index_t t = 0; t < seq; ++t) {
          double g0 = 0;
          for (index_t s = 0; s <= t; ++s) {
            const double r = X0(t) * H(t, s) * X1(s) - double(P[t * seq + s]);
            total += r * r;
            const double g = 2.0 * double(grad_scale) * r;
            g0 += g * H(t, s) * X1(s);
            dh[t - s] += g * X0(t) * X1(s);
            if (t == s) dbias += g * X0(t) * X1(s);
          }
          if (d_x0) d_x0[(b * seq + t) * C + c] = static_cast<T>(g0);
        }
        if (d_x1)
          for (index_t s = 0; s < seq; ++s) {
            double g1 = 0;
            for (index_t t = s; t < seq; ++t) {
              const double r = X0(t) * H(t, s) * X1(s) - double(P[t * seq + s]);
              g1 += 2.0 * double(grad_scale) * r * X0(t) * H(t, s);
            }
            d_x1[(b * seq + s) * C + c] = static_cast<T>(g1);
          }
      }
      if (d_h)
        for (index_t k = 0; k < seq; ++k) d_h[c * ldh + k] = static_cast<T>(dh[k]);
      if (d_bias) d_bias[c] = static_cast<T>(double(d_bias[c]) + dbias);
    }
    return total;
  }
};

}  // namespace hyena::backend
