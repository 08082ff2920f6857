// io/llama2c.hpp: Karpathy's llama2.c checkpoints, all three formats its export.py writes.
//
// Legacy, "version 0" (export.py --version 0; run.c reads it): little-endian, 7 int32 (dim,
// hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len), then float32 tensors, each
// (out, in) row-major:
//   tok_emb[vocab, dim]  rms_att[L, dim]  wq[L, dim, dim]  wk[L, kv_dim, dim]
//   wv[L, kv_dim, dim]   wo[L, dim, dim]  rms_ffn[L, dim]  w1[L, hidden, dim]
//   w2[L, dim, hidden]   w3[L, hidden, dim]  rms_final[dim]
//   freq_cis_real[seq_len, head/2]  freq_cis_imag[seq_len, head/2]
//   wcls[vocab, dim]     only when vocab_size < 0 (untied classifier; |vocab_size| is the vocab)
//
// Versioned (export.py --version 1 / 2): a 256-byte header: uint32 magic 0x616b3432 ("ak42"),
// int32 version, the same 7 int32 (vocab_size positive), uint8 shared_classifier, for version 2
// an int32 group_size (at byte 37, unaligned), zeros up to byte 256. Then
//   version 1 (float32): rms_att[L, dim] rms_ffn[L, dim] rms_final[dim] tok_emb wq wk wv wo w1 w2 w3
//                        [wcls when not shared]; no RoPE tables.
//   version 2 (int8, Q8_0): rms_att, rms_ffn, rms_final as float32; then int8 values of tok_emb,
//                        wq[0..L), wk, wv, wo, w1, w2, w3, [wcls], tensor after tensor; then the
//                        float32 scales of the same tensors in the same order, one per group of
//                        group_size consecutive values: w = q * scale (symmetric, q in [-127, 127]).
//                        Every quantised tensor's size is a multiple of group_size.
// The file size must equal exactly what the header implies; every refusal names the file, the
// format and its version.
//
// llama2.c rotates interleaved pairs (2i, 2i+1) of each head; our attention rotates
// (i, i + head/2) ("rotate_half"). Permuting the rows of wq and wk inside each head so
// that old row 2i becomes row i and old row 2i+1 becomes row i + head/2 makes both compute
// the same scores (q.k is unchanged when q and k are permuted alike) - the permutation
// Hugging Face's Llama conversion script applies. RoPE base 10000 in every version (run.c's).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include "../models/llama.hpp"
#include "mapped_file.hpp"

namespace hyena::io {

struct llama2c_header {
  std::int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  std::int32_t version = 0;     // 0 legacy, 1 float32, 2 int8 Q8_0
  bool shared = false;          // versions 1 and 2: the classifier is tok_emb
  std::int32_t group_size = 0;  // version 2: values per scale

  static constexpr std::uint32_t magic = 0x616b3432;  // "ak42"
  static constexpr index_t legacy_header_bytes = 7 * 4;
  static constexpr index_t versioned_header_bytes = 256;
  static constexpr index_t header_bytes = legacy_header_bytes;  // the legacy format's (kept for callers)

  bool shared_classifier() const { return version == 0 ? vocab_size > 0 : shared; }
  index_t vocab() const { return vocab_size < 0 ? -index_t(vocab_size) : index_t(vocab_size); }
  index_t head_size() const { return dim / n_heads; }
  index_t kv_dim() const { return index_t(n_kv_heads) * head_size(); }
  index_t header_size() const { return version == 0 ? legacy_header_bytes : versioned_header_bytes; }

  // "legacy format (version 0, float32)", "version 1 (float32)", "version 2 (int8 Q8_0, ...)".
  std::string format() const {
    if (version == 0) return "legacy format (version 0, float32)";
    if (version == 1) return "format version 1 (float32, magic ak42)";
    if (version == 2)
      return "format version 2 (int8 Q8_0, group size " + std::to_string(group_size) + ", magic ak42)";
    return "format version " + std::to_string(version) + " (magic ak42)";
  }

  // Throws unless the sizes describe a model we can build; `path` names the file.
  void validate(const std::string& path) const {
    const std::string where = "llama2.c checkpoint " + path + " (" + format() + ")";
    HYENA_CHECK(dim > 0 && hidden_dim > 0 && n_layers > 0 && n_heads > 0 && n_kv_heads > 0 && vocab_size != 0 &&
                    seq_len > 0,
                where, ": bad header: dim ", dim, ", hidden_dim ", hidden_dim, ", n_layers ", n_layers, ", n_heads ",
                n_heads, ", n_kv_heads ", n_kv_heads, ", vocab_size ", vocab_size, ", seq_len ", seq_len,
                " (all must be positive, vocab_size nonzero)");
    HYENA_CHECK(version == 0 || vocab_size > 0, where, ": bad header: vocab_size ", vocab_size,
                " must be positive (this format flags an untied classifier with shared_classifier = 0)");
    HYENA_CHECK(dim % n_heads == 0 && head_size() % 2 == 0, where, ": dim ", dim, " must be n_heads (", n_heads,
                ") times an even head size");
    HYENA_CHECK(n_heads % n_kv_heads == 0, where, ": n_heads ", n_heads, " is not a multiple of n_kv_heads ",
                n_kv_heads);
    // Keep the sizes far from int64 overflow for absurd headers.
    const double approx = double(vocab()) * dim * 2 + double(n_layers) * dim * (4.0 * dim + 3.0 * hidden_dim) +
                          double(seq_len) * head_size();
    HYENA_CHECK(approx < 1e15, where, ": header sizes are implausibly large (", approx, " parameters)");
    if (version == 2) {
      HYENA_CHECK(group_size > 0, where, ": bad header: group_size ", group_size, " must be positive");
      const index_t d = dim, kv = kv_dim(), h = hidden_dim;
      const std::pair<const char*, index_t> sizes[] = {
          {"tok_emb", vocab() * d}, {"wq", d * d}, {"wk", kv * d}, {"wv", kv * d}, {"wo", d * d}, {"w1", h * d},
          {"w2", d * h},           {"w3", h * d}};
      for (const auto& [name, n] : sizes)
        HYENA_CHECK(n % group_size == 0, where, ": ", name, " has ", n, " values, not a multiple of group_size ",
                    group_size);
    }
  }

  // Weight values (float32 in versions 0 and 1, int8 in version 2), without norms or RoPE tables.
  index_t matrix_values() const {
    const index_t d = dim, h = hidden_dim, L = n_layers, kv = kv_dim(), v = vocab();
    index_t n = v * d;                      // tok_emb
    n += L * (d * d + 2 * kv * d + d * d);  // wq, wk, wv, wo
    n += L * 3 * h * d;                     // w1, w2, w3
    if (!shared_classifier()) n += v * d;   // wcls
    return n;
  }
  index_t norm_values() const { return index_t(n_layers) * dim * 2 + dim; }  // rms_att, rms_ffn, rms_final
  // The legacy format's float32 values after the header (RoPE tables included).
  index_t floats() const { return matrix_values() + norm_values() + index_t(seq_len) * head_size(); }
  index_t file_bytes() const {
    if (version == 0) return legacy_header_bytes + 4 * floats();
    if (version == 1) return versioned_header_bytes + 4 * (norm_values() + matrix_values());
    return versioned_header_bytes + 4 * norm_values() + matrix_values() + 4 * (matrix_values() / group_size);
  }

  // The matching Llama configuration: RMSNorm eps 1e-5, no biases, rope base 10000.
  models::model_config config() const {
    auto c = models::llama_config(vocab(), dim, n_layers, n_heads, n_kv_heads, hidden_dim, seq_len);
    c.tie_embeddings = shared_classifier();
    return c;
  }
};

namespace detail {

// Reads and validates the header of a mapped checkpoint (any version), including the exact size.
inline llama2c_header parse_llama2c_header(const mapped_file& f) {
  const std::string& path = f.path();
  llama2c_header h;
  std::uint32_t first = 0;
  if (f.size() >= 4) std::memcpy(&first, f.data(), 4);
  if (first == llama2c_header::magic) {
    const auto* b = reinterpret_cast<const unsigned char*>(f.data());
    HYENA_CHECK(f.size() >= std::size_t(llama2c_header::versioned_header_bytes), "llama2.c checkpoint ", path,
                " (magic ak42, versioned format): ", f.size(), " bytes, shorter than the 256-byte header");
    std::memcpy(&h.version, b + 4, 4);
    HYENA_CHECK(h.version == 1 || h.version == 2, "llama2.c checkpoint ", path, " (magic ak42): format version ",
                h.version, " is not supported (known: 1 float32, 2 int8 Q8_0; and the legacy format without magic)");
    std::int32_t v[7];
    std::memcpy(v, b + 8, sizeof v);
    h.dim = v[0], h.hidden_dim = v[1], h.n_layers = v[2], h.n_heads = v[3], h.n_kv_heads = v[4];
    h.vocab_size = v[5], h.seq_len = v[6];
    const unsigned flag = b[36];
    HYENA_CHECK(flag <= 1, "llama2.c checkpoint ", path, " (", h.format(), "): shared_classifier byte is ", flag,
                ", expected 0 or 1");
    h.shared = flag == 1;
    std::size_t used = 37;
    if (h.version == 2) {
      std::memcpy(&h.group_size, b + 37, 4);
      used = 41;
    }
    for (std::size_t i = used; i < std::size_t(llama2c_header::versioned_header_bytes); ++i)
      HYENA_CHECK(b[i] == 0, "llama2.c checkpoint ", path, " (", h.format(), "): header byte ", i, " is ",
                  unsigned(b[i]), "; bytes ", used, "..255 must be zero padding");
  } else {
    HYENA_CHECK(f.size() >= std::size_t(llama2c_header::legacy_header_bytes), "llama2.c checkpoint ", path,
                " (legacy format, version 0): ", f.size(), " bytes, shorter than the 28-byte header");
    std::int32_t v[7];
    std::memcpy(v, f.data(), sizeof v);
    h.dim = v[0], h.hidden_dim = v[1], h.n_layers = v[2], h.n_heads = v[3], h.n_kv_heads = v[4];
    h.vocab_size = v[5], h.seq_len = v[6];
  }
  h.validate(path);
  const index_t want = h.file_bytes(), have = index_t(f.size());
  HYENA_CHECK(want == have, "llama2.c checkpoint ", path, " (", h.format(), "): size mismatch: the header implies ",
              want, " bytes, the file has ", have, " bytes", have < want ? " (truncated)" : " (trailing data)");
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

// Reads Q8_0 values in file order: value i is q[i] * scale[i / group] (version 2).
struct q8_reader {
  const std::int8_t* q;
  const std::byte* scales;
  index_t group, i = 0;
  float next() {
    float s;
    std::memcpy(&s, scales + 4 * (i / group), 4);
    return float(q[i++]) * s;
  }
  template <class T>
  void rows(T* dst, index_t n) {
    for (index_t k = 0; k < n; ++k) dst[k] = static_cast<T>(next());
  }
};

// Row r of a head in llama2.c order lands at row rotate_half_row(r) in ours.
inline index_t rotate_half_row(index_t r, index_t head) { return r % 2 == 0 ? r / 2 : head / 2 + r / 2; }

// The model's tensors, each filled from a reader in llama2.c's order and layout.
template <class Params>
struct llama2c_filler {
  Params& p;
  const llama2c_header& h;
  index_t d = h.dim, hd = h.hidden_dim, L = h.n_layers, hs = h.head_size(), kv = h.kv_dim();

  template <class R>
  void tok_emb(R& r) { r.rows(p.embedding.weight.data, h.vocab() * d); }
  template <class R>
  void rms_att(R& r) { for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].norm1.weight.data, d); }
  template <class R>
  void rms_ffn(R& r) { for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].norm2.weight.data, d); }
  template <class R>
  void rms_final(R& r) { r.rows(p.final_norm.weight.data, d); }
  // Fused qkv rows: [q (d rows) | k (kv rows) | v (kv rows)], each (., d); q and k permuted per head.
  template <class R>
  void rope_rows(R& r, index_t l, index_t first_row, index_t n_rows) {
    auto* w = p.blocks[l].mix.qkv.weight.data + first_row * d;
    for (index_t row = 0; row < n_rows; ++row) {
      const index_t head = row / hs, dst = head * hs + rotate_half_row(row % hs, hs);
      r.rows(w + dst * d, d);
    }
  }
  template <class R>
  void attention(R& r) {
    for (index_t l = 0; l < L; ++l) rope_rows(r, l, 0, d);
    for (index_t l = 0; l < L; ++l) rope_rows(r, l, d, kv);
    for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].mix.qkv.weight.data + (d + kv) * d, kv * d);
    for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].mix.out.weight.data, d * d);
  }
  template <class R>
  void ffn(R& r) {
    for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].ffn.gate.weight.data, hd * d);
    for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].ffn.down.weight.data, d * hd);
    for (index_t l = 0; l < L; ++l) r.rows(p.blocks[l].ffn.up.weight.data, hd * d);
  }
  template <class R>
  void classifier(R& r) {
    if (!h.shared_classifier()) r.rows(p.unembed.weight.data, h.vocab() * d);
  }
};

}  // namespace detail

// Reads only the header (validated, with the exact size check).
inline llama2c_header read_llama2c_header(const std::string& path) {
  mapped_file f(path);
  return detail::parse_llama2c_header(f);
}

// Loads a llama2.c checkpoint of any version (legacy 0, 1 float32, 2 int8 dequantised to T)
// into a Llama model (host memory backends). Legacy files' stored RoPE tables are checked
// against base 10000, the only base the format implies.
template <class B = backend::cpu, class T = float>
models::llama<B, T> load_llama2c(const std::string& path) {
  mapped_file f(path);
  const llama2c_header h = detail::parse_llama2c_header(f);
  models::llama<B, T> model(h.config());
  auto& p = model.parameters();
  detail::llama2c_filler<std::remove_reference_t<decltype(p)>> fill{p, h};
  const std::byte* body = f.data() + h.header_size();
  if (h.version == 1) {
    detail::f32_reader r{body};
    fill.rms_att(r), fill.rms_ffn(r), fill.rms_final(r);
    fill.tok_emb(r), fill.attention(r), fill.ffn(r), fill.classifier(r);
    return model;
  }
  if (h.version == 2) {
    detail::f32_reader norms{body};
    fill.rms_att(norms), fill.rms_ffn(norms), fill.rms_final(norms);
    const auto* q = reinterpret_cast<const std::int8_t*>(norms.at);
    detail::q8_reader r{q, norms.at + h.matrix_values(), h.group_size};
    fill.tok_emb(r), fill.attention(r), fill.ffn(r), fill.classifier(r);
    return model;
  }
  detail::f32_reader r{body};
  fill.tok_emb(r), fill.rms_att(r), fill.attention(r), fill.rms_ffn(r), fill.ffn(r), fill.rms_final(r);

  // freq_cis_real then freq_cis_imag: cos and sin of pos * base^(-2i/head).
  const index_t hs = h.head_size(), half = hs / 2;
  for (int part = 0; part < 2; ++part)
    for (index_t pos = 0; pos < h.seq_len; ++pos)
      for (index_t i = 0; i < half; ++i) {
        const double angle = double(pos) * std::pow(10000.0, -2.0 * double(i) / double(hs));
        const double want = part == 0 ? std::cos(angle) : std::sin(angle), got = r.next();
        HYENA_CHECK(std::abs(got - want) < 1e-3, "llama2.c checkpoint ", path, " (", h.format(), "): freq_cis_",
                    part == 0 ? "real" : "imag", "[", pos, ", ", i, "] is ", got, ", expected ", want,
                    " (RoPE base 10000)");
      }
  fill.classifier(r);
  return model;
}

}  // namespace hyena::io
