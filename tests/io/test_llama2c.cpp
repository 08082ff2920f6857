// llama2.c checkpoints and tokenizer: the real stories260K model must reproduce Karpathy's
// published greedy sample byte for byte; the tokenizer round-trips and encodes as
// SentencePiece does; malformed files throw hyena::error naming the file and the problem.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <hyena/io/llama2c.hpp>
#include <hyena/io/llama2c_tokenizer.hpp>
#include <hyena/io/token_file.hpp>
#include <hyena/models/llama.hpp>
#include <hyena/train/generate.hpp>
#include <hyena/models/decoder.hpp>

using namespace hyena;

namespace {

std::string data_dir() {
  if (const char* d = std::getenv("HYENA_DATA_DIR"); d && *d) return d;
#ifdef HYENA_DEFAULT_DATA_DIR
  return HYENA_DEFAULT_DATA_DIR;
#else
  return "";
#endif
}

// The stories260K folder, or "" (test skipped, or failed when HYENA_REQUIRE_DATA=1).
std::string stories_dir() {
  std::string d = data_dir() + "/stories260k";
  if (std::filesystem::exists(d + "/stories260K.bin") && std::filesystem::exists(d + "/tok512.bin")) return d;
  const char* req = std::getenv("HYENA_REQUIRE_DATA");
  if (req && std::string(req) == "1") FAIL("stories260k data not found in ", d, " and HYENA_REQUIRE_DATA=1");
  MESSAGE("stories260k data not found in ", d, ": skipping (set HYENA_DATA_DIR)");
  return "";
}

std::string read_bytes(const std::string& path) { return io::read_text_file(path); }

// A scratch file in the temp directory, removed on destruction.
struct temp_path {
  std::string path;
  explicit temp_path(const std::string& name)
      : path((std::filesystem::temp_directory_path() / (name + "." + std::to_string(::getpid()))).string()) {}
  ~temp_path() { std::filesystem::remove(path); }
  void write(const std::string& bytes) const {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
  }
};

template <class U>
void append(std::string& s, U v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// A valid llama2.c checkpoint of random weights (with correct RoPE tables).
std::string tiny_checkpoint(std::int32_t dim, std::int32_t hidden, std::int32_t layers, std::int32_t heads,
                            std::int32_t kv_heads, std::int32_t vocab_size, std::int32_t seq_len,
                            std::uint64_t seed = 1) {
  std::string s;
  for (std::int32_t v : {dim, hidden, layers, heads, kv_heads, vocab_size, seq_len}) append(s, v);
  io::llama2c_header h{dim, hidden, layers, heads, kv_heads, vocab_size, seq_len};
  const index_t weights = h.floats() - index_t(seq_len) * h.head_size() - (h.shared_classifier() ? 0 : h.vocab() * dim);
  rng r(seed);
  for (index_t i = 0; i < weights; ++i) append(s, float(r.normal(0, 0.3)));
  const index_t hs = h.head_size();
  for (int part = 0; part < 2; ++part)
    for (index_t pos = 0; pos < seq_len; ++pos)
      for (index_t i = 0; i < hs / 2; ++i) {
        double a = double(pos) * std::pow(10000.0, -2.0 * double(i) / double(hs));
        append(s, float(part == 0 ? std::cos(a) : std::sin(a)));
      }
  if (!h.shared_classifier())
    for (index_t i = 0; i < h.vocab() * dim; ++i) append(s, float(r.normal(0, 0.3)));
  return s;
}

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const error& e) {
    return e.what();
  }
  return "(no error)";
}

// llama2.c's own forward for one position, written independently from its C code's
// structure: interleaved-pair RoPE on raw wq/wk rows, a KV cache, SwiGLU. Returns logits.
struct llama2c_reference {
  io::llama2c_header h;
  std::vector<float> w;  // every float after the header
  std::vector<std::vector<float>> kcache, vcache;
  explicit llama2c_reference(const std::string& bytes) {
    std::memcpy(&h, bytes.data(), 28);
    w.resize((bytes.size() - 28) / 4);
    std::memcpy(w.data(), bytes.data() + 28, w.size() * 4);
    kcache.assign(h.n_layers, {});
    vcache.assign(h.n_layers, {});
  }
  static void matvec(const float* W, const std::vector<double>& x, index_t out, std::vector<double>& y) {
    y.assign(out, 0);
    for (index_t i = 0; i < out; ++i)
      for (std::size_t j = 0; j < x.size(); ++j) y[i] += double(W[i * index_t(x.size()) + j]) * x[j];
  }
  static std::vector<double> rmsnorm(const std::vector<double>& x, const float* g) {
    double ss = 0;
    for (double v : x) ss += v * v;
    double s = 1 / std::sqrt(ss / double(x.size()) + 1e-5);
    std::vector<double> y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * g[i];
    return y;
  }
  std::vector<double> step(std::int32_t token, index_t pos) {
    const index_t d = h.dim, hd = h.hidden_dim, L = h.n_layers, hs = h.head_size(), kv = h.kv_dim(), V = h.vocab();
    const float* emb = w.data();
    const float* rms_att = emb + V * d;
    const float* wq = rms_att + L * d;
    const float* wk = wq + L * d * d;
    const float* wv = wk + L * kv * d;
    const float* wo = wv + L * kv * d;
    const float* rms_ffn = wo + L * d * d;
    const float* w1 = rms_ffn + L * d;
    const float* w2 = w1 + L * hd * d;
    const float* w3 = w2 + L * d * hd;
    const float* rms_final = w3 + L * hd * d;
    std::vector<double> x(emb + token * d, emb + (token + 1) * d), q, k, v, o, t, a, b;
    for (index_t l = 0; l < L; ++l) {
      auto xn = rmsnorm(x, rms_att + l * d);
      matvec(wq + l * d * d, xn, d, q);
      matvec(wk + l * kv * d, xn, kv, k);
      matvec(wv + l * kv * d, xn, kv, v);
      for (index_t i = 0; i < d; i += 2) {  // interleaved pairs
        double f = double(pos) * std::pow(10000.0, -double(i % hs) / double(hs)), c = std::cos(f), s = std::sin(f);
        auto rot = [&](std::vector<double>& u) {
          double u0 = u[i], u1 = u[i + 1];
          u[i] = u0 * c - u1 * s;
          u[i + 1] = u0 * s + u1 * c;
        };
        rot(q);
        if (i < kv) rot(k);
      }
      kcache[l].insert(kcache[l].end(), k.begin(), k.end());
      vcache[l].insert(vcache[l].end(), v.begin(), v.end());
      std::vector<double> att(d, 0.0);
      for (index_t hh = 0; hh < h.n_heads; ++hh) {
        const index_t g = hh / (h.n_heads / h.n_kv_heads);
        std::vector<double> sc(pos + 1);
        double mx = -1e300, z = 0;
        for (index_t p = 0; p <= pos; ++p) {
          double dot = 0;
          for (index_t j = 0; j < hs; ++j) dot += q[hh * hs + j] * double(kcache[l][p * kv + g * hs + j]);
          mx = std::max(mx, sc[p] = dot / std::sqrt(double(hs)));
        }
        for (auto& s : sc) z += s = std::exp(s - mx);
        for (index_t p = 0; p <= pos; ++p)
          for (index_t j = 0; j < hs; ++j) att[hh * hs + j] += sc[p] / z * double(vcache[l][p * kv + g * hs + j]);
      }
      matvec(wo + l * d * d, att, d, o);
      for (index_t i = 0; i < d; ++i) x[i] += o[i];
      xn = rmsnorm(x, rms_ffn + l * d);
      matvec(w1 + l * hd * d, xn, hd, a);
      matvec(w3 + l * hd * d, xn, hd, b);
      for (index_t i = 0; i < hd; ++i) a[i] = a[i] / (1 + std::exp(-a[i])) * b[i];
      matvec(w2 + l * d * hd, a, d, o);
      for (index_t i = 0; i < d; ++i) x[i] += o[i];
    }
    x = rmsnorm(x, rms_final);
    const float* cls = h.shared_classifier() ? emb : rms_final + d + index_t(h.seq_len) * hs;
    std::vector<double> logits;
    matvec(cls, x, V, logits);
    return logits;
  }
};

}  // namespace

TEST_CASE("llama2c: the loaded model computes what llama2.c computes (interleaved RoPE, GQA, untied)") {
  for (std::int32_t vocab : {13, -13}) {  // tied, then untied classifier
    INFO("vocab_size ", vocab);
    temp_path f("hyena_llama2c_tiny.bin");
    const std::string bytes = tiny_checkpoint(16, 24, 2, 4, 2, vocab, 9);
    f.write(bytes);
    auto m = io::load_llama2c<backend::cpu_ref, double>(f.path);
    CHECK(m.config().tie_embeddings == (vocab > 0));
    CHECK(m.config().vocab == 13);
    CHECK(m.config().max_seq == 9);
    llama2c_reference ref(bytes);
    const std::vector<std::int32_t> toks{1, 5, 12, 0, 7, 7, 3, 9, 2};
    tensor<std::int32_t> ids(shape{1, index_t(toks.size())});
    std::copy(toks.begin(), toks.end(), ids.data());
    backend::host_context ctx;
    m.reserve(1, index_t(toks.size()), models::mode::infer);
    auto logits = m.forward(ctx, ids.v());
    double worst = 0;
    for (std::size_t p = 0; p < toks.size(); ++p) {
      auto want = ref.step(toks[p], index_t(p));
      for (index_t v = 0; v < 13; ++v) worst = std::max(worst, std::abs(want[v] - logits.data[index_t(p) * 13 + v]));
    }
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("llama2c: stories260K greedy generation from BOS reproduces the published sample byte for byte") {
  const std::string dir = stories_dir();
  if (dir.empty()) return;
  auto model = io::load_llama2c<backend::cpu>(dir + "/stories260K.bin");
  const auto& c = model.config();
  CHECK(c.vocab == 512);
  CHECK(c.hidden == 64);
  CHECK(c.layers == 5);
  CHECK(c.heads == 8);
  CHECK(c.kv_heads == 4);
  CHECK(c.intermediate == 172);
  CHECK(c.max_seq == 512);
  CHECK(c.tie_embeddings);
  CHECK(model.parameter_count() == 260032);  // the RoPE tables are not parameters
  io::llama2c_tokenizer tok(dir + "/tok512.bin", c.vocab);
  backend::host_context ctx;
  auto out = train::generate(model, ctx, {io::llama2c_tokenizer::bos}, 256, train::sampling{.temperature = 0},
                             io::llama2c_tokenizer::bos);
  if (out.back() == io::llama2c_tokenizer::bos) out.pop_back();
  const std::string text = tok.decode(out);
  const std::string want = read_bytes(dir + "/greedy_t0_reference.txt");
  CHECK(text + "\n" == want);

  // The key/value-cache decoder (what sample_corpus and generate run on) writes the same story.
  models::decoder<decltype(model)> dec(model, ctx, 1, 257);
  std::vector<std::int32_t> fast{io::llama2c_tokenizer::bos};
  for (int step = 0; step < 256; ++step) {
    const float* logits = dec.step(ctx, std::span(&fast.back(), 1));
    rng unused(0);
    const std::int32_t next = train::sample_token(logits, c.vocab, train::sampling{.temperature = 0}, unused);
    if (next == io::llama2c_tokenizer::bos) break;
    fast.push_back(next);
  }
  CHECK(tok.decode(fast) + "\n" == want);
}

TEST_CASE("llama2c tokenizer: known encodings and round trips on tok512") {
  const std::string dir = stories_dir();
  if (dir.empty()) return;
  io::llama2c_tokenizer tok(dir + "/tok512.bin", 512);
  CHECK(tok.vocab_size() == 512);
  CHECK(tok.max_token_length() == 7);
  CHECK(tok.piece(1) == "\n<s>\n");
  CHECK(tok.piece(259) == " t");
  CHECK(tok.byte_id(0x41) == 3 + 0x41);
  CHECK(tok.encode("").empty());
  // " the" is a piece, so the dummy prefix makes "the" one token.
  CHECK(tok.encode("the") == std::vector<std::int32_t>{tok.lookup(" the")});
  CHECK(tok.lookup(" the") == 265);
  auto ids = tok.encode("Once upon a time");
  CHECK(tok.decode(ids) == "Once upon a time");
  for (auto id : ids) CHECK(tok.piece(id).size() >= 1);
  // Code points outside the vocabulary fall back to bytes (ids 3 + byte), and come back.
  const std::string cjk = "a\xe4\xb8\xad\xe6\x96\x87!";  // "a中文!"
  auto cj = tok.encode(cjk);
  CHECK(std::find(cj.begin(), cj.end(), 3 + 0xE4) != cj.end());
  CHECK(tok.decode(cj) == cjk);
  for (const std::string s : {"Lily's mom said, \"Let's go!\"\n\nThe end.", "  two leading spaces", "x",
                              "tabs\tand\r\nnewlines\n", "caf\xc3\xa9 \xe2\x84\xa2", "\xff\xfe broken utf8 \x80"}) {
    INFO(s);
    CHECK(tok.decode(tok.encode(s)) == s);
  }
  // decode strips the space after BOS (llama2.c) and drops BOS/EOS; bad ids throw.
  std::vector<std::int32_t> with_bos{1, tok.lookup(" the"), 2};
  CHECK(tok.decode(with_bos) == "the");
  std::vector<std::int32_t> mid{tok.lookup("he"), tok.lookup(" the")};
  CHECK(tok.decode(mid) == "he the");
  CHECK_THROWS_AS(tok.decode(std::vector<std::int32_t>{512}), error);
  CHECK_THROWS_AS(tok.decode(std::vector<std::int32_t>{-1}), error);
}

TEST_CASE("llama2c tokenizer: BPE merges by score, matching an independent O(n^2) merge loop") {
  // A hand-made vocabulary: unk, BOS, EOS, 256 byte pieces, then pieces with scores.
  std::string f;
  append(f, std::int32_t(4));
  auto rec = [&](float score, const std::string& s) {
    append(f, score);
    append(f, std::int32_t(s.size()));
    f += s;
  };
  rec(0, "<unk>");
  rec(0, "\n<s>\n");
  rec(0, "\n</s>\n");
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    rec(0, buf);
  }
  const std::vector<std::pair<float, std::string>> merges{
      {-1, " a"}, {-2, "ab"}, {-3, " ab"}, {-4, "bc"}, {-5, "abc"}, {-6, " abc"}, {-7, "a"}, {-8, "b"}, {-9, "c"},
      {-10, " "}, {-11, "cc"}, {-0.5f, "ccc"}};
  for (auto& [s, p] : merges) rec(s, p);
  temp_path path("hyena_llama2c_tok.bin");
  path.write(f);
  io::llama2c_tokenizer tok(path.path);
  CHECK(tok.vocab_size() == 259 + index_t(merges.size()));
  auto id = [&](const std::string& s) { return tok.lookup(s); };
  // " a" (best), then " ab" beats "bc", then " abc".
  CHECK(tok.encode("abc") == std::vector<std::int32_t>{id(" abc")});
  // Equal-score "cc" pairs: the leftmost merges first, then "ccc" (higher score) wins.
  CHECK(tok.encode("cccc") == std::vector<std::int32_t>{id(" "), id("ccc"), id("c")});
  CHECK(tok.encode("ccc") == std::vector<std::int32_t>{id(" "), id("ccc")});
  // Unknown code points become bytes.
  CHECK(tok.encode("d") == std::vector<std::int32_t>{id(" "), 3 + 'd'});

  // Independent check: llama2.c's quadratic loop on random strings over {a, b, c, space}.
  rng r(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::string s;
    for (index_t i = 0, n = 1 + r.below(30); i < n; ++i) s += "abc "[r.below(4)];
    std::vector<std::string> sym{" "};
    for (char ch : s) sym.push_back(std::string(1, ch));
    while (true) {
      float best = -1e30f;
      int at = -1;
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
        int m = id(sym[i] + sym[i + 1]);
        if (m >= 0 && tok.score(m) > best) best = tok.score(m), at = int(i);
      }
      if (at < 0) break;
      sym[std::size_t(at)] += sym[std::size_t(at) + 1];
      sym.erase(sym.begin() + at + 1);
    }
    std::vector<std::int32_t> want;
    for (auto& p : sym) want.push_back(id(p));
    INFO(s);
    CHECK(tok.encode(s) == want);
    CHECK(tok.decode(tok.encode(s)) == s);
  }
}

TEST_CASE("llama2c: malformed checkpoints throw hyena::error naming the file and the problem") {
  const std::string good = tiny_checkpoint(16, 24, 2, 4, 2, 13, 9);
  temp_path f("hyena_llama2c_bad.bin");
  auto message = [&](const std::string& bytes) {
    f.write(bytes);
    return error_of([&] { io::load_llama2c<backend::cpu>(f.path); });
  };
  f.write(good);
  CHECK_NOTHROW(io::load_llama2c<backend::cpu>(f.path));

  std::string m = message(good.substr(0, good.size() - 4));  // truncated by 4 bytes
  CHECK(m.find(f.path) != std::string::npos);
  CHECK(m.find("size mismatch") != std::string::npos);
  CHECK(m.find(std::to_string(good.size())) != std::string::npos);      // expected
  CHECK(m.find(std::to_string(good.size() - 4)) != std::string::npos);  // actual
  CHECK(m.find("truncated") != std::string::npos);

  m = message(good + std::string(8, '\0'));  // trailing bytes
  CHECK(m.find("trailing") != std::string::npos);

  std::string wrong = good;  // header says 3 layers: the sizes no longer match the file
  std::int32_t three = 3;
  std::memcpy(wrong.data() + 8, &three, 4);
  m = message(wrong);
  CHECK(m.find(f.path) != std::string::npos);
  CHECK(m.find("size mismatch") != std::string::npos);

  for (int field = 0; field < 7; ++field)
    for (std::int32_t bad : {0, -4}) {
      if (field == 5 && bad < 0) continue;  // a negative vocab is legal (untied classifier)
      std::string h = good;
      std::memcpy(h.data() + 4 * field, &bad, 4);
      INFO("field ", field, " = ", bad);
      m = message(h);
      CHECK(m.find(f.path) != std::string::npos);
      CHECK(m.find("bad header") != std::string::npos);
    }
  std::string odd = good;  // heads not dividing dim
  std::int32_t five = 5;
  std::memcpy(odd.data() + 12, &five, 4);
  CHECK(message(odd).find("n_heads") != std::string::npos);
  CHECK(message(good.substr(0, 10)).find("header") != std::string::npos);

  std::string rope = good;  // a RoPE table for another base
  const std::size_t freq_at = good.size() - 2 * 9 * 2 * 4;
  float x = 0.25f;
  std::memcpy(rope.data() + freq_at + 4 * 5, &x, 4);
  CHECK(message(rope).find("freq_cis") != std::string::npos);

  CHECK_THROWS_AS(io::load_llama2c<backend::cpu>("/nonexistent/model.bin"), error);
}

TEST_CASE("llama2c tokenizer: malformed tokenizer.bin files throw hyena::error naming the file") {
  std::string f;
  append(f, std::int32_t(6));
  for (const std::string s : {"<unk>", "\n<s>\n", "\n</s>\n", "ab", " x"}) {
    append(f, 0.0f);
    append(f, std::int32_t(s.size()));
    f += s;
  }
  temp_path p("hyena_llama2c_badtok.bin");
  auto message = [&](const std::string& bytes, index_t vocab) {
    p.write(bytes);
    return error_of([&] { io::llama2c_tokenizer t(p.path, vocab); });
  };
  p.write(f);
  CHECK(io::llama2c_tokenizer(p.path).vocab_size() == 5);
  CHECK(io::llama2c_tokenizer(p.path, 5).vocab_size() == 5);
  for (std::size_t cut : {std::size_t(1), std::size_t(3), std::size_t(6)}) {
    std::string m = message(f.substr(0, f.size() - cut), 0);
    INFO(m);
    CHECK(m.find(p.path) != std::string::npos);
    CHECK(m.find("cut short") != std::string::npos);
  }
  CHECK(message(f, 6).find("cut short in token 5") != std::string::npos);  // fewer tokens than the vocab
  CHECK(message(f, 4).find("trailing data") != std::string::npos);
  CHECK(message(f.substr(0, 2), 0).find("cut short") != std::string::npos);
  std::string neg = f;
  std::int32_t minus = -1;
  std::memcpy(neg.data() + 8, &minus, 4);  // first record's length
  CHECK(message(neg, 0).find("negative length") != std::string::npos);
  std::string zero = f;
  std::int32_t z = 0;
  std::memcpy(zero.data(), &z, 4);
  CHECK(message(zero, 0).find("max_token_length") != std::string::npos);
  CHECK_THROWS_AS(io::llama2c_tokenizer("/nonexistent/tok.bin"), error);
}
