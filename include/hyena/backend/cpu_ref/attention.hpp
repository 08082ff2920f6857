// cpu_ref/attention.hpp: rotary position embedding and the causal softmax as plain loops.
//
// Rotary follows GPT-NeoX / Hugging Face "rotate_half": within the first r = rot_dims
// dims of a head, dim i pairs with dim i + r/2 and the pair turns by pos * base^(-2i/r).
#pragma once
#include <algorithm>
#include <cmath>

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
};

}  // namespace hyena::backend
