// llama2.c checkpoint versions 1 (float32, magic "ak42") and 2 (int8 Q8_0) beside the legacy one:
// the stories260K weights exported by llama2.c's export.py --version 1 (../shared/cases/llama2c-v1)
// load to exactly the legacy file's parameters and write the same greedy story; a version 2 file,
// written here from the legacy weights (and by tests/reference/llama2c_export.py, our Python
// mirror of export.py's version2_export, when python3 is present: the bytes must agree) loads to
// the dequantised weights and nearly the same logits; every refusal names the format and version.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <hyena/io/llama2c.hpp>
#include <hyena/io/llama2c_tokenizer.hpp>
#include <hyena/train/generate.hpp>
#include <string>
#include <vector>

#include "safetensors_test_util.hpp"
#include "support/cases_dir.hpp"

using namespace hyena;
using testing::read_bytes;
using testing::scratch_dir;
using testing::write_bytes;

namespace {

template <class U>
void append(std::string& s, U v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}

float f32_at(const std::string& b, std::size_t at) {
  float x;
  std::memcpy(&x, b.data() + at, 4);
  return x;
}

// A legacy checkpoint's tensors, in the order the versioned formats need them.
struct legacy_weights {
  std::int32_t sizes[7];
  bool shared;
  std::vector<std::vector<float>> norms, matrices;
};

legacy_weights split_legacy(const std::string& b) {
  legacy_weights w;
  std::memcpy(w.sizes, b.data(), 28);
  io::llama2c_header h{w.sizes[0], w.sizes[1], w.sizes[2], w.sizes[3], w.sizes[4], w.sizes[5], w.sizes[6]};
  w.shared = h.shared_classifier();
  const index_t d = h.dim, hd = h.hidden_dim, L = h.n_layers, kv = h.kv_dim(), V = h.vocab();
  std::size_t at = 28;
  auto take = [&](index_t n) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = f32_at(b, at), at += 4;
    return v;
  };
  std::vector<std::vector<float>> rms_att, rms_ffn, m[7];
  auto tok = take(V * d);
  for (index_t l = 0; l < L; ++l) rms_att.push_back(take(d));
  const index_t counts[7] = {d * d, kv * d, kv * d, d * d, 0, 0, 0};
  for (int k = 0; k < 4; ++k)
    for (index_t l = 0; l < L; ++l) m[k].push_back(take(counts[k]));
  for (index_t l = 0; l < L; ++l) rms_ffn.push_back(take(d));
  const index_t ffn[3] = {hd * d, d * hd, hd * d};
  for (int k = 0; k < 3; ++k)
    for (index_t l = 0; l < L; ++l) m[4 + k].push_back(take(ffn[k]));
  auto final_norm = take(d);
  take(index_t(h.seq_len) * h.head_size());
  w.norms = rms_att;
  w.norms.insert(w.norms.end(), rms_ffn.begin(), rms_ffn.end());
  w.norms.push_back(final_norm);
  w.matrices.push_back(tok);
  for (auto& group : m) w.matrices.insert(w.matrices.end(), group.begin(), group.end());
  if (!w.shared) w.matrices.push_back(take(V * d));
  REQUIRE(at == b.size());
  return w;
}

std::string versioned_header(std::int32_t version, const legacy_weights& w, std::int32_t group) {
  std::string s;
  append(s, std::uint32_t(0x616b3432));
  append(s, version);
  for (int i = 0; i < 7; ++i) append(s, i == 5 ? std::abs(w.sizes[5]) : w.sizes[i]);
  append(s, std::uint8_t(w.shared));
  if (version == 2) append(s, group);
  s.resize(256, '\0');
  return s;
}

// export.py --version 1 / 2, from legacy bytes (the same layout llama2c_export.py writes).
std::string to_version(const std::string& legacy, int version, std::int32_t group = 64) {
  const legacy_weights w = split_legacy(legacy);
  while (w.sizes[0] % group != 0) group /= 2;
  std::string s = versioned_header(version, w, group);
  for (const auto& n : w.norms)
    for (float x : n) append(s, x);
  if (version == 1) {
    for (const auto& m : w.matrices)
      for (float x : m) append(s, x);
    return s;
  }
  std::vector<float> scales;
  for (const auto& m : w.matrices) {
    REQUIRE(m.size() % std::size_t(group) == 0);
    for (std::size_t g = 0; g < m.size(); g += std::size_t(group)) {
      float mx = 0;
      for (std::size_t i = g; i < g + std::size_t(group); ++i) mx = std::max(mx, std::abs(m[i]));
      const float scale = mx / 127.0f;
      scales.push_back(scale);
      for (std::size_t i = g; i < g + std::size_t(group); ++i)
        append(s, std::int8_t(scale == 0 ? 0 : std::nearbyint(m[i] / scale)));  // half to even
    }
  }
  for (float x : scales) append(s, x);
  return s;
}

// A small legacy checkpoint of random weights with correct RoPE tables.
std::string tiny_legacy(std::int32_t vocab_size) {
  const std::int32_t dim = 16, hidden = 32, layers = 2, heads = 4, kv_heads = 2, seq = 9;
  io::llama2c_header h{dim, hidden, layers, heads, kv_heads, vocab_size, seq};
  std::string s;
  for (std::int32_t v : {dim, hidden, layers, heads, kv_heads, vocab_size, seq}) append(s, v);
  rng r(3);
  const index_t before_rope = h.floats() - index_t(seq) * h.head_size() - (h.shared_classifier() ? 0 : h.vocab() * dim);
  for (index_t i = 0; i < before_rope; ++i) append(s, float(r.normal(0, 0.3)));
  const index_t hs = h.head_size();
  for (int part = 0; part < 2; ++part)
    for (index_t pos = 0; pos < seq; ++pos)
      for (index_t i = 0; i < hs / 2; ++i) {
        double a = double(pos) * std::pow(10000.0, -2.0 * double(i) / double(hs));
        append(s, float(part == 0 ? std::cos(a) : std::sin(a)));
      }
  if (!h.shared_classifier())
    for (index_t i = 0; i < h.vocab() * dim; ++i) append(s, float(r.normal(0, 0.3)));
  return s;
}

template <class Model>
std::vector<float> flat_parameters(Model& m) {
  std::vector<float> out;
  m.for_each_parameter([&](const std::string&, auto& p, auto&) { out.insert(out.end(), p.data, p.data + p.numel()); });
  return out;
}

template <class Model>
std::vector<float> logits_of(Model& m, const std::vector<std::int32_t>& toks) {
  tensor<std::int32_t> ids(shape{1, index_t(toks.size())});
  std::copy(toks.begin(), toks.end(), ids.data());
  backend::host_context ctx;
  m.reserve(1, index_t(toks.size()), models::mode::infer);
  auto l = m.forward(ctx, ids.v());
  return std::vector<float>(l.data, l.data + l.numel());
}

std::string error_of(const std::string& path) {
  try {
    io::load_llama2c<backend::cpu>(path);
  } catch (const error& e) {
    return e.what();
  }
  return "(no error)";
}

bool have_python() { return std::system("python3 --version > /dev/null 2>&1") == 0; }

std::string stories_bin() {
  const std::string d = testing::cases_dir("llama2c-v1");  // the check for the shared folders
  if (d.empty()) return "";
  const auto p = testing::shared_data_dir() / "stories260k" / "stories260K.bin";
  REQUIRE(std::filesystem::exists(p));
  return p.string();
}

}  // namespace

TEST_CASE("llama2c v1/v2: tiny checkpoints load to the legacy weights (exactly / within half a scale)") {
  scratch_dir dir;
  for (std::int32_t vocab : {13 * 4, -13 * 4}) {  // tied, untied
    CAPTURE(vocab);
    const std::string legacy = tiny_legacy(vocab);
    write_bytes(dir.file("v0.bin"), legacy);
    write_bytes(dir.file("v1.bin"), to_version(legacy, 1));
    write_bytes(dir.file("v2.bin"), to_version(legacy, 2, 32));
    auto m0 = io::load_llama2c<backend::cpu>(dir.file("v0.bin"));
    auto m1 = io::load_llama2c<backend::cpu>(dir.file("v1.bin"));
    auto m2 = io::load_llama2c<backend::cpu>(dir.file("v2.bin"));
    CHECK(io::read_llama2c_header(dir.file("v1.bin")).version == 1);
    const auto h2 = io::read_llama2c_header(dir.file("v2.bin"));
    CHECK(h2.version == 2);
    CHECK(h2.group_size == 16);  // 32 halves until it divides dim 16
    CHECK(m1.config().tie_embeddings == (vocab > 0));
    CHECK(m2.config().tie_embeddings == (vocab > 0));
    const auto p0 = flat_parameters(m0), p1 = flat_parameters(m1), p2 = flat_parameters(m2);
    REQUIRE(p0.size() == p1.size());
    REQUIRE(p0.size() == p2.size());
    CHECK(p0 == p1);
    double worst = 0, moved = 0;
    for (std::size_t i = 0; i < p0.size(); ++i) worst = std::max(worst, double(std::abs(p0[i] - p2[i])));
    for (std::size_t i = 0; i < p0.size(); ++i) moved += p0[i] != p2[i];
    CHECK(worst <= 1.2 * 0.5 / 127.0);  // half a quantisation step of |w| <= 1.2 (0.3 sigma * 4)
    CHECK(moved > 0);                   // the int8 path really ran
  }
}

TEST_CASE("llama2c v1: the export.py --version 1 stories260K loads to the legacy weights and story") {
  const std::string legacy = stories_bin();
  if (legacy.empty()) return;
  const std::string v1 = testing::cases_dir("llama2c-v1") + "/stories260K-v1.bin";
  // Our writer reproduces the real exporter's file byte for byte: the layout is understood.
  CHECK(to_version(read_bytes(legacy), 1) == read_bytes(v1));
  const auto h = io::read_llama2c_header(v1);
  CHECK(h.version == 1);
  CHECK(h.shared_classifier());
  auto m0 = io::load_llama2c<backend::cpu>(legacy);
  auto m1 = io::load_llama2c<backend::cpu>(v1);
  CHECK(flat_parameters(m0) == flat_parameters(m1));
  const std::string tok_path = (testing::shared_data_dir() / "stories260k" / "tok512.bin").string();
  io::llama2c_tokenizer tok(tok_path, 512);
  backend::host_context ctx;
  auto greedy = [&](auto& m) {
    auto out = train::generate(m, ctx, {io::llama2c_tokenizer::bos}, 200, train::sampling{.temperature = 0},
                               io::llama2c_tokenizer::bos);
    return tok.decode(out);
  };
  const std::string t1 = greedy(m1);
  CHECK(t1 == greedy(m0));
  const std::string want = read_bytes((testing::shared_data_dir() / "stories260k" / "greedy_t0_reference.txt").string());
  CHECK(want.rfind(t1.substr(0, 200), 0) == 0);  // the published sample starts with it
}

TEST_CASE("llama2c v2: int8 stories260K loads to the dequantised weights with nearly the same logits") {
  const std::string legacy = stories_bin();
  if (legacy.empty()) return;
  scratch_dir dir;
  const std::string v2 = to_version(read_bytes(legacy), 2);
  write_bytes(dir.file("v2.bin"), v2);
  if (have_python()) {  // the independent Python writer agrees byte for byte
    const std::string cmd = "python3 \"" HYENA_TEST_SOURCE_DIR "/reference/llama2c_export.py\" \"" + legacy +
                            "\" \"" + dir.file("v2py.bin") + "\" --version 2";
    REQUIRE(std::system(cmd.c_str()) == 0);
    CHECK(read_bytes(dir.file("v2py.bin")) == v2);
  } else {
    MESSAGE("python3 not found: the Python export cross-check is skipped");
  }
  const auto h = io::read_llama2c_header(dir.file("v2.bin"));
  CHECK(h.version == 2);
  CHECK(h.group_size == 64);
  auto m0 = io::load_llama2c<backend::cpu>(legacy);
  auto m2 = io::load_llama2c<backend::cpu>(dir.file("v2.bin"));
  const std::vector<std::int32_t> prompt{1, 403, 407, 261, 378, 300, 264, 260, 492, 378, 288, 263, 330};
  const auto l0 = logits_of(m0, prompt), l2 = logits_of(m2, prompt);
  double worst = 0, scale = 0;
  std::size_t same_argmax = 0;
  for (std::size_t i = 0; i < l0.size(); ++i) worst = std::max(worst, double(std::abs(l0[i] - l2[i])));
  for (float x : l0) scale = std::max(scale, double(std::abs(x)));
  for (std::size_t t = 0; t < prompt.size(); ++t) {
    auto row = [&](const std::vector<float>& l) { return l.begin() + std::ptrdiff_t(t * 512); };
    same_argmax += std::max_element(row(l0), row(l0) + 512) - row(l0) == std::max_element(row(l2), row(l2) + 512) - row(l2);
  }
  MESSAGE("stories260K int8 vs float32: max |logit diff| ", worst, " (max |logit| ", scale, "), argmax equal at ",
          same_argmax, " of ", prompt.size(), " positions");
  CHECK(worst < 0.05 * scale);
  CHECK(worst > 0);
  CHECK(same_argmax >= prompt.size() - 1);
}

TEST_CASE("llama2c versions: malformed files are refused naming the file, the format and the version") {
  scratch_dir dir;
  const std::string legacy = tiny_legacy(52);
  const std::string v1 = to_version(legacy, 1), v2 = to_version(legacy, 2, 16);
  const std::string path = dir.file("bad.bin");
  auto msg = [&](const std::string& bytes) {
    write_bytes(path, bytes);
    return error_of(path);
  };
  auto has = [](const std::string& m, const std::string& part) {
    INFO(m);
    CHECK(m.find(part) != std::string::npos);
  };
  CHECK(msg(v1) == "(no error)");
  CHECK(msg(v2) == "(no error)");
  {
    std::string b = v1;
    std::int32_t three = 3;
    std::memcpy(b.data() + 4, &three, 4);
    const std::string m = msg(b);
    has(m, path);
    has(m, "format version 3 is not supported");
  }
  {
    const std::string m = msg(v1.substr(0, v1.size() - 4));
    has(m, "format version 1 (float32");
    has(m, "truncated");
  }
  {
    const std::string m = msg(v2 + "xx");
    has(m, "format version 2 (int8 Q8_0, group size 16");
    has(m, "trailing data");
  }
  {
    std::string b = v1;
    b[36] = 2;  // shared_classifier flag
    has(msg(b), "shared_classifier byte is 2");
  }
  {
    std::string b = v1;
    b[100] = 1;  // padding
    const std::string m = msg(b);
    has(m, "header byte 100");
    has(m, "version 1");
  }
  {
    std::string b = v2;
    std::int32_t zero = 0;
    std::memcpy(b.data() + 37, &zero, 4);
    has(msg(b), "group_size 0 must be positive");
    std::int32_t seven = 7;
    std::memcpy(b.data() + 37, &seven, 4);
    has(msg(b), "not a multiple of group_size 7");
  }
  {
    std::string b = v1;
    std::int32_t neg = -52;
    std::memcpy(b.data() + 8 + 20, &neg, 4);
    has(msg(b), "vocab_size -52 must be positive");
  }
  {
    std::string b = v1;
    std::int32_t bad = 0;
    std::memcpy(b.data() + 8, &bad, 4);  // dim
    const std::string m = msg(b);
    has(m, "bad header");
    has(m, "format version 1");
  }
  has(msg(v1.substr(0, 100)), "shorter than the 256-byte header");
  {
    const std::string m = msg(legacy.substr(0, legacy.size() - 4));
    has(m, "legacy format (version 0");
    has(m, "truncated");
  }
}
