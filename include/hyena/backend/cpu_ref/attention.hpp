// cpu_ref/attention.hpp: rotary position embedding, the causal softmax and the whole causal
// attention core (scores, softmax, weighted values) as plain loops.
//
// Rotary follows GPT-NeoX / Hugging Face "rotate_half": within the first r = rot_dims
// dims of a head, dim i pairs with dim i + r/2 and the pair turns by pos * base^(-2i/r).
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "../context.hpp"

namespace hyena::backend {

namespace attention_detail {
// The rotary angle of pair i at position pos, in double so long sequences stay exact.
inline double rotary_angle(index_t pos, index_t i, index_t rot_dims, double base) {
  return static_cast<double>(pos) * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(rot_dims));
}

// Rotates, in place, the first rot_dims dims of every head of x, laid out
// (batch, seq, heads, head_dim) with positions row_stride elements apart and heads
// head_dim apart (so q and k heads inside a fused qkv row work directly).
// sign = +1 applies the rotation, -1 its transpose (the gradient).
template <class T>
void rotary_apply(index_t batch, index_t seq, index_t heads, index_t head_dim, index_t row_stride,
                  index_t rot_dims, double base, double sign, T* x) {
  HYENA_CHECK(rot_dims >= 0 && rot_dims % 2 == 0 && rot_dims <= head_dim, "rotary: rot_dims ", rot_dims,
              " must be even and at most head_dim ", head_dim);
  HYENA_CHECK(row_stride >= heads * head_dim, "rotary: row_stride ", row_stride, " < heads * head_dim ",
              heads * head_dim);
  index_t half = rot_dims / 2;
  for (index_t b = 0; b < batch; ++b)
    for (index_t s = 0; s < seq; ++s)
      for (index_t h = 0; h < heads; ++h) {
        T* v = x + (b * seq + s) * row_stride + h * head_dim;
        for (index_t i = 0; i < half; ++i) {
          double a = sign * rotary_angle(s, i, rot_dims, base);
          double c = std::cos(a), sn = std::sin(a);
          double x1 = v[i], x2 = v[i + half];
          v[i] = static_cast<T>(x1 * c - x2 * sn);
          v[i + half] = static_cast<T>(x2 * c + x1 * sn);
        }
      }
}

}  // namespace attention_detail

struct ref_attention_ops {
  // x in place, (batch, seq, heads, head_dim) with rows row_stride apart (see rotary_apply).
  template <class T>
  static void rotary_forward(host_context&, index_t batch, index_t seq, index_t heads, index_t head_dim,
                             index_t row_stride, index_t rot_dims, double base, T* x) {
    attention_detail::rotary_apply(batch, seq, heads, head_dim, row_stride, rot_dims, base, 1.0, x);
  }

  // dx in place: the transpose of the rotation, i.e. the same rotation by -angle.
  template <class T>
  static void rotary_backward(host_context&, index_t batch, index_t seq, index_t heads, index_t head_dim,
                              index_t row_stride, index_t rot_dims, double base, T* dx) {
    attention_detail::rotary_apply(batch, seq, heads, head_dim, row_stride, rot_dims, base, -1.0, dx);
  }

  // For each of `batches` (seq x seq) matrices: probs[i, j] = softmax over j <= i of
  // scale * scores[i, j], and exactly 0 for j > i. probs may alias scores.
  template <class T>
  static void causal_softmax_forward(host_context&, index_t batches, index_t seq, T scale, const T* scores,
                                     T* probs) {
    for (index_t r = 0; r < batches * seq; ++r) {
      index_t i = r % seq;
      const T* s = scores + r * seq;
      T* p = probs + r * seq;
      T mx = scale * s[0];
      for (index_t j = 1; j <= i; ++j) mx = std::max(mx, scale * s[j]);
      double sum = 0;
      for (index_t j = 0; j <= i; ++j) {
        p[j] = std::exp(scale * s[j] - mx);
        sum += p[j];
      }
      T inv = static_cast<T>(1.0 / sum);
      for (index_t j = 0; j <= i; ++j) p[j] *= inv;
      for (index_t j = i + 1; j < seq; ++j) p[j] = T(0);
    }
  }

  // dscores[i, j] = scale * p[i, j] * (dprobs[i, j] - sum_k p[i, k] dprobs[i, k]); zero
  // above the diagonal. dscores may alias dprobs.
  template <class T>
  static void causal_softmax_backward(host_context&, index_t batches, index_t seq, T scale, const T* probs,
                                      const T* dprobs, T* dscores) {
    for (index_t r = 0; r < batches * seq; ++r) {
      index_t i = r % seq;
      const T* p = probs + r * seq;
      const T* dp = dprobs + r * seq;
      T* ds = dscores + r * seq;
      double dot = 0;
      for (index_t j = 0; j <= i; ++j) dot += double(p[j]) * double(dp[j]);
      for (index_t j = 0; j <= i; ++j) ds[j] = static_cast<T>(scale * p[j] * (dp[j] - dot));
      for (index_t j = i + 1; j < seq; ++j) ds[j] = T(0);
    }
  }

  // The causal attention core on fused qkv rows (batch, seq, row): q heads at columns
  // [0, heads*D), k heads at heads*D + g*D, v heads at (heads + kv_heads)*D + g*D. Query head h
  // uses kv head g = h / (heads / kv_heads). For every (b, h, t):
  //   s_j = scale * q_t . k_j (j <= t),  p = softmax(s),  out_t = sum_j p_j v_j,
  //   lse[b, h, t] = log sum_j exp(s_j)  (what backward needs to rebuild p without storing it).
  // out rows (batch, seq, out_row), head h at columns h*D.
  template <class T>
  static void causal_attention_forward(host_context&, index_t batch, index_t seq, index_t heads, index_t kv_heads,
                                       index_t head_dim, T scale, const T* qkv, index_t qkv_row, T* out,
                                       index_t out_row, T* lse) {
    const index_t D = head_dim, group = heads / kv_heads;
    std::vector<double> s(seq);
    for (index_t b = 0; b < batch; ++b)
      for (index_t h = 0; h < heads; ++h) {
        const index_t kc = (heads + h / group) * D, vc = (heads + kv_heads + h / group) * D;
        for (index_t t = 0; t < seq; ++t) {
          const T* q = qkv + (b * seq + t) * qkv_row + h * D;
          double mx = -INFINITY, sum = 0;
          for (index_t j = 0; j <= t; ++j) {
            const T* k = qkv + (b * seq + j) * qkv_row + kc;
            double d = 0;
            for (index_t i = 0; i < D; ++i) d += double(q[i]) * double(k[i]);
            s[j] = double(scale) * d;
            mx = std::max(mx, s[j]);
          }
          for (index_t j = 0; j <= t; ++j) sum += std::exp(s[j] - mx);
          T* o = out + (b * seq + t) * out_row + h * D;
          for (index_t i = 0; i < D; ++i) {
            double acc = 0;
            for (index_t j = 0; j <= t; ++j) acc += std::exp(s[j] - mx) / sum * double(qkv[(b * seq + j) * qkv_row + vc + i]);
            o[i] = static_cast<T>(acc);
          }
          lse[(b * heads + h) * seq + t] = static_cast<T>(mx + std::log(sum));
        }
      }
  }

  // Its gradient: dqkv (same layout as qkv, every q, k and v column assigned) from dout,
  // given the forward's qkv, out and lse.
  template <class T>
  static void causal_attention_backward(host_context&, index_t batch, index_t seq, index_t heads, index_t kv_heads,
                                        index_t head_dim, T scale, const T* qkv, index_t qkv_row, const T* out,
                                        const T* dout, index_t out_row, const T* lse, T* dqkv) {
    const index_t D = head_dim, group = heads / kv_heads, width = (heads + 2 * kv_heads) * D;
    std::vector<double> g(batch * seq * width, 0.0), p(seq), dp(seq);
    for (index_t b = 0; b < batch; ++b)
      for (index_t h = 0; h < heads; ++h) {
        const index_t kc = (heads + h / group) * D, vc = (heads + kv_heads + h / group) * D;
        auto at = [&](index_t t, index_t col) { return double(qkv[(b * seq + t) * qkv_row + col]); };
        for (index_t t = 0; t < seq; ++t) {
          const T* o = out + (b * seq + t) * out_row + h * D;
          const T* dy = dout + (b * seq + t) * out_row + h * D;
          double rowdot = 0;  // sum_j p_j dp_j == dout_t . out_t
          for (index_t i = 0; i < D; ++i) rowdot += double(dy[i]) * double(o[i]);
          for (index_t j = 0; j <= t; ++j) {
            double d = 0, e = 0;
            for (index_t i = 0; i < D; ++i) {
              d += at(t, h * D + i) * at(j, kc + i);
              e += double(dy[i]) * at(j, vc + i);
            }
            p[j] = std::exp(double(scale) * d - double(lse[(b * heads + h) * seq + t]));
            dp[j] = e;
          }
          for (index_t j = 0; j <= t; ++j) {
            const double ds = p[j] * (dp[j] - rowdot) * double(scale);
            for (index_t i = 0; i < D; ++i) {
              g[(b * seq + t) * width + h * D + i] += ds * at(j, kc + i);
              g[(b * seq + j) * width + kc + i] += ds * at(t, h * D + i);
              g[(b * seq + j) * width + vc + i] += p[j] * double(dy[i]);
            }
          }
        }
      }
    for (index_t r = 0; r < batch * seq; ++r)
      for (index_t i = 0; i < width; ++i) dqkv[r * qkv_row + i] = static_cast<T>(g[r * width + i]);
  }
};

}  // namespace hyena::backend
