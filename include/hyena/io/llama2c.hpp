// io/llama2c.hpp: Karpathy's llama2.c checkpoints (the legacy "v0" float32 format).
//
// Layout (little-endian): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len), then float32 tensors, each (out, in) row-major:
//   tok_emb[vocab, dim]  rms_att[L, dim]  wq[L, dim, dim]  wk[L, kv_dim, dim]
//   wv[L, kv_dim, dim]   wo[L, dim, dim]  rms_ffn[L, dim]  w1[L, hidden, dim]
//   w2[L, dim, hidden]   w3[L, hidden, dim]  rms_final[dim]
//   freq_cis_real[seq_len, head/2]  freq_cis_imag[seq_len, head/2]
//   wcls[vocab, dim]     only when vocab_size < 0 (untied classifier; |vocab_size| is the vocab)
// The file size must equal exactly what the header implies.
//
// llama2.c rotates interleaved pairs (2i, 2i+1) of each head; our attention rotates
// (i, i + head/2) ("rotate_half"). Permuting the rows of wq and wk inside each head so
// that old row 2i becomes row i and old row 2i+1 becomes row i + head/2 makes both compute
// the same scores (q.k is unchanged when q and k are permuted alike) - the permutation
// Hugging Face's Llama conversion script applies.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "../models/llama.hpp"
#include "mapped_file.hpp"

namespace hyena::io {

struct llama2c_header {
  std::int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;

  bool shared_classifier() const { return vocab_size > 0; }
  index_t vocab() const { return vocab_size < 0 ? -index_t(vocab_size) : index_t(vocab_size); }
  index_t head_size() const { return dim / n_heads; }
  index_t kv_dim() const { return index_t(n_kv_heads) * head_size(); }

  // Throws unless the sizes describe a model we can build; `path` names the file.
  void validate(const std::string& path) const {
    HYENA_CHECK(dim > 0 && hidden_dim > 0 && n_layers > 0 && n_heads > 0 && n_kv_heads > 0 && vocab_size != 0 &&
                    seq_len > 0,
                "llama2.c checkpoint ", path, ": bad header: dim ", dim, ", hidden_dim ", hidden_dim, ", n_layers ",
                n_layers, ", n_heads ", n_heads, ", n_kv_heads ", n_kv_heads, ", vocab_size ", vocab_size,
                ", seq_len ", seq_len, " (all must be positive, vocab_size nonzero)");
    HYENA_CHECK(dim % n_heads == 0 && head_size() % 2 == 0, "llama2.c checkpoint ", path, ": dim ", dim,
                " must be n_heads (", n_heads, ") times an even head size");
    HYENA_CHECK(n_heads % n_kv_heads == 0, "llama2.c checkpoint ", path, ": n_heads ", n_heads,
                " is not a multiple of n_kv_heads ", n_kv_heads);
    // Keep floats() far from int64 overflow for absurd headers.
    const double approx = double(vocab()) * dim * 2 + double(n_layers) * dim * (4.0 * dim + 3.0 * hidden_dim) +
                          double(seq_len) * head_size();
    HYENA_CHECK(approx < 1e15, "llama2.c checkpoint ", path, ": header sizes are implausibly large (", approx,
                " parameters)");
  }

  // float32 values after the header.
  index_t floats() const {
    const index_t d = dim, h = hidden_dim, L = n_layers, kv = kv_dim(), v = vocab();
    index_t n = v * d;                           // tok_emb
    n += L * d;                                  // rms_att
    n += L * (d * d + 2 * kv * d + d * d);       // wq, wk, wv, wo
    n += L * d;                                  // rms_ffn
    n += L * 3 * h * d;                          // w1, w2, w3
    n += d;                                      // rms_final
    n += index_t(seq_len) * head_size();         // freq_cis real + imag (seq_len x head/2 each)
    if (!shared_classifier()) n += v * d;        // wcls
    return n;
  }
  static constexpr index_t header_bytes = 7 * 4;
  index_t file_bytes() const { return header_bytes + 4 * floats(); }

  // The matching Llama configuration: RMSNorm eps 1e-5, no biases, rope base 10000.
  models::model_config config() const {
    auto c = models::llama_config(vocab(), dim, n_layers, n_heads, n_kv_heads, hidden_dim, seq_len);
    c.tie_embeddings = shared_classifier();
    return c;
  }
};

namespace detail {

// Reads and validates the header of a mapped checkpoint, including the exact file size.
inline llama2c_header parse_llama2c_header(const mapped_file& f) {
  const std::string& path = f.path();
  HYENA_CHECK(f.size() >= std::size_t(llama2c_header::header_bytes), "llama2.c checkpoint ", path, ": ", f.size(),
              " bytes, shorter than the 28-byte header");
  std::int32_t v[7];
  std::memcpy(v, f.data(), sizeof v);
  llama2c_header h{v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
  h.validate(path);
  const index_t want = h.file_bytes(), have = index_t(f.size());
  HYENA_CHECK(want == have, "llama2.c checkpoint ", path, ": size mismatch: the header implies ", want,
              " bytes, the file has ", have, " bytes", have < want ? " (truncated)" : " (trailing data)");
  return h;
}

// Reads float32 values from an unaligned position and advances it.
struct f32_reader {
  const std::byte* at;
  float next() {
    float x;
    std::memcpy(&x, at, 4);
    at += 4;
    return x;
  }
  template <class T>
  void rows(T* dst, index_t n) {
    for (index_t i = 0; i < n; ++i) dst[i] = static_cast<T>(next());
  }
  void skip(index_t n) { at += 4 * n; }
};

// Row r of a head in llama2.c order lands at row rotate_half_row(r) in ours.
inline index_t rotate_half_row(index_t r, index_t head) { return r % 2 == 0 ? r / 2 : head / 2 + r / 2; }

}  // namespace detail

// Reads only the header (validated, with the exact size check).
inline llama2c_header read_llama2c_header(const std::string& path) {
  mapped_file f(path);
  return detail::parse_llama2c_header(f);
}

// Loads a llama2.c v0 checkpoint into a Llama model (host memory backends). The stored
// RoPE tables are checked against base 10000, the only base the format implies.
template <class B = backend::cpu, class T = float>
models::llama<B, T> load_llama2c(const std::string& path) {
  mapped_file f(path);
  const llama2c_header h = detail::parse_llama2c_header(f);
  models::llama<B, T> model(h.config());
  auto& p = model.parameters();
  const index_t d = h.dim, hd = h.hidden_dim, L = h.n_layers, hs = h.head_size(), kv = h.kv_dim();
  detail::f32_reader r{f.data() + llama2c_header::header_bytes};

  r.rows(p.embedding.weight.data, h.vocab() * d);
  for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].norm1.weight.data, d);
  // Fused qkv rows: [q (d rows) | k (kv rows) | v (kv rows)], each (., d).
  auto read_rope_rows = [&](index_t l, index_t first_row, index_t n_rows) {
    T* w = p.blocks[l].mix.qkv.weight.data + first_row * d;
    for (index_t row = 0; row < n_rows; ++row) {
      const index_t head = row / hs, dst = head * hs + detail::rotate_half_row(row % hs, hs);
      r.rows(w + dst * d, d);
    }
  };
  for (index_t l = 0; l < L; ++l) read_rope_rows(l, 0, d);
  for (index_t l = 0; l < L; ++l) read_rope_rows(l, d, kv);
  for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].mix.qkv.weight.data + (d + kv) * d, kv * d);
  for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].mix.out.weight.data, d * d);
  for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].norm2.weight.data, d);
  for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].ffn.gate.weight.data, hd * d);
  for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].ffn.down.weight.data, d * hd);
  for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].ffn.up.weight.data, hd * d);
  r.rows(p.final_norm.weight.data, d);

  // freq_cis_real then freq_cis_imag: cos and sin of pos * base^(-2i/head).
  const index_t half = hs / 2;
  for (int part = 0; part < 2; ++part)
    for (index_t pos = 0; pos < h.seq_len; ++pos)
      for (index_t i = 0; i < half; ++i) {
        const double angle = double(pos) * std::pow(10000.0, -2.0 * double(i) / double(hs));
        const double want = part == 0 ? std::cos(angle) : std::sin(angle), got = r.next();
        HYENA_CHECK(std::abs(got - want) < 1e-3, "llama2.c checkpoint ", path, ": freq_cis_",
                    part == 0 ? "real" : "imag", "[", pos, ", ", i, "] is ", got, ", expected ", want,
                    " (RoPE base 10000)");
      }
  if (!h.shared_classifier()) r.rows(p.unembed.weight.data, h.vocab() * d);
  return model;
}

}  // namespace hyena::io
