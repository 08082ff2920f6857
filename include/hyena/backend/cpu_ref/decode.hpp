// cpu_ref/decode.hpp: the ops of incremental decoding (models/decoder.hpp), as plain loops.
//
// Every op advances `rows` independent sequences by one token, row r at its own position
// pos[r] (0-based: the new token is the pos[r]-th of its row). Caches and histories are laid
// out (rows, max_len, width): position t of row r at (r * max_len + t) * width.
//
//   rotary_at             rotary of one position per row (the decode step's q and k)
//   attention_decode      one query per row against that row's cached keys and values
//   short_conv_step       the short causal conv from a ring of the last `kernel` inputs
//   causal_conv_step      sum_{s <= t} h[t - s] w[s] over a row's history (exact Hyena, O(t))
//   modal_step            s <- lambda s + w, y = Re(sum_k R_k s_k) (diagonal recurrence, O(d))
//   modal_prefill         the recurrence's state after a prompt, from its history
#pragma once
#include <cmath>
#include <complex>
#include <vector>

#include "../context.hpp"
#include "attention.hpp"

namespace hyena::backend {

struct ref_decode_ops {
  // x: rows of row_stride values; the first `heads` heads (head_dim apart) of row r turn by
  // position pos[r] (rotary_forward's formula).
  template <class T>
  static void rotary_at(host_context&, index_t rows, index_t heads, index_t head_dim, index_t row_stride,
                        index_t rot_dims, double base, const index_t* pos, T* x) {
    const index_t half = rot_dims / 2;
    for (index_t r = 0; r < rows; ++r)
      for (index_t h = 0; h < heads; ++h) {
        T* v = x + r * row_stride + h * head_dim;
        for (index_t i = 0; i < half; ++i) {
          const double a = attention_detail::rotary_angle(pos[r], i, rot_dims, base);
          const double c = std::cos(a), s = std::sin(a), x1 = v[i], x2 = v[i + half];
          v[i] = static_cast<T>(x1 * c - x2 * s);
          v[i + half] = static_cast<T>(x2 * c + x1 * s);
        }
      }
  }

  // q: (rows, q_row), query head h at h * head_dim; caches (rows, max_len, kv_heads * head_dim);
  // out: (rows, out_row), head h at h * head_dim. Query head h reads kv head h / (heads / kv_heads)
  // over positions 0 .. pos[r].
  template <class T>
  static void attention_decode(host_context&, index_t rows, index_t heads, index_t kv_heads, index_t head_dim,
                               T scale, const T* q, index_t q_row, const T* k_cache, const T* v_cache,
                               index_t max_len, const index_t* pos, T* out, index_t out_row) {
    const index_t D = head_dim, group = heads / kv_heads, kv = kv_heads * D;
    std::vector<double> p;
    for (index_t r = 0; r < rows; ++r) {
      const index_t n = pos[r] + 1;
      p.assign(std::size_t(n), 0.0);
      for (index_t h = 0; h < heads; ++h) {
        const T* qh = q + r * q_row + h * D;
        const index_t g = h / group;
        double mx = -INFINITY, z = 0;
        for (index_t t = 0; t < n; ++t) {
          const T* k = k_cache + (r * max_len + t) * kv + g * D;
          double d = 0;
          for (index_t i = 0; i < D; ++i) d += double(qh[i]) * double(k[i]);
          p[std::size_t(t)] = double(scale) * d;
          mx = std::max(mx, p[std::size_t(t)]);
        }
        for (auto& v : p) z += v = std::exp(v - mx);
        for (index_t i = 0; i < D; ++i) {
          double acc = 0;
          for (index_t t = 0; t < n; ++t) acc += p[std::size_t(t)] * double(v_cache[(r * max_len + t) * kv + g * D + i]);
          out[r * out_row + h * D + i] = static_cast<T>(acc / z);
        }
      }
    }
  }

  // ring: (rows, kernel, channels), the input at position t in slot t % kernel. y[r, c] =
  // bias[c] + sum_k weight[c, k] x[pos - (kernel - 1) + k] (inputs before position 0 are 0),
  // i.e. short_conv_forward's output at pos[r].
  template <class T>
  static void short_conv_step(host_context&, index_t rows, index_t channels, index_t kernel, const T* ring,
                              const T* weight, const T* bias, const index_t* pos, T* y) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < channels; ++c) {
        double acc = bias[c];
        for (index_t k = 0; k < kernel; ++k) {
          const index_t t = pos[r] - (kernel - 1) + k;
          if (t >= 0) acc += double(weight[c * kernel + k]) * double(ring[(r * kernel + t % kernel) * channels + c]);
        }
        y[r * channels + c] = static_cast<T>(acc);
      }
  }

  // hist: (rows, max_len, channels), positions 0 .. pos[r] filled; h: (channels, >= pos + 1)
  // with row stride ldh. y[r, c] = sum_{s <= pos} h[c, pos - s] hist[r, s, c].
  template <class T>
  static void causal_conv_step(host_context&, index_t rows, index_t channels, const T* hist, index_t max_len,
                               const T* h, index_t ldh, const index_t* pos, T* y) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < channels; ++c) {
        double acc = 0;
        for (index_t s = 0; s <= pos[r]; ++s)
          acc += double(h[c * ldh + pos[r] - s]) * double(hist[(r * max_len + s) * channels + c]);
        y[r * channels + c] = static_cast<T>(acc);
      }
  }

  // poles, residues: (channels, modes, 2) as (re, im); state: (rows, channels, modes, 2).
  // s_k <- lambda_k s_k + w[r, c], then y[r, c] = Re sum_k R_k s_k.
  template <class T>
  static void modal_step(host_context&, index_t rows, index_t channels, index_t modes, const T* poles,
                         const T* residues, T* state, const T* w, T* y) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < channels; ++c) {
        double acc = 0;
        for (index_t k = 0; k < modes; ++k) {
          const index_t pk = (c * modes + k) * 2, sk = ((r * channels + c) * modes + k) * 2;
          const std::complex<double> lam(poles[pk], poles[pk + 1]), res(residues[pk], residues[pk + 1]);
          const std::complex<double> s = lam * std::complex<double>(state[sk], state[sk + 1]) + double(w[r * channels + c]);
          state[sk] = static_cast<T>(s.real());
          state[sk + 1] = static_cast<T>(s.imag());
          acc += (res * s).real();
        }
        y[r * channels + c] = static_cast<T>(acc);
      }
  }

  // The state after positions 0 .. len-1 of every row: s_k = sum_{t < len} lambda_k^(len-1-t) hist[r, t, c].
  template <class T>
  static void modal_prefill(host_context&, index_t rows, index_t channels, index_t modes, const T* poles,
                            const T* hist, index_t max_len, index_t len, T* state) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < channels; ++c)
        for (index_t k = 0; k < modes; ++k) {
          const index_t pk = (c * modes + k) * 2, sk = ((r * channels + c) * modes + k) * 2;
          const std::complex<double> lam(poles[pk], poles[pk + 1]);
          std::complex<double> s = 0;
          for (index_t t = 0; t < len; ++t) s = lam * s + double(hist[(r * max_len + t) * channels + c]);
          state[sk] = static_cast<T>(s.real());
          state[sk + 1] = static_cast<T>(s.imag());
        }
  }
};

}  // namespace hyena::backend
