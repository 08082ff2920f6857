// sample_corpus and the key/value-cache decoder it runs on, with a tiny random Llama.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <unistd.h>
#include <vector>

#include <hyena/io/token_file.hpp>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/llama.hpp>
#include <hyena/train/sample_corpus.hpp>

using namespace hyena;

namespace {

template <class Model>
Model tiny_model(const models::model_config& c, std::uint64_t seed = 5) {
  Model m(c);
  rng r(seed);
  m.init(r);
  // Larger weights than the 0.02 init so the next-token distributions are far from uniform.
  m.for_each_parameter([&](const std::string& n, auto& p, auto&) {
    if (n.find("norm") == std::string::npos)
      for (index_t i = 0; i < p.numel(); ++i) p.data[i] = static_cast<typename Model::scalar>(p.data[i] * 20);
  });
  return m;
}

models::model_config tiny_llama() { return models::llama_config(17, 16, 2, 4, 2, 24, 24); }

// Full-window forward logits of every prefix vs. the cache, row by row, rows at different offsets.
template <class Model>
void check_decoder_matches_forward(Model& m, double tol) {
  const auto& c = m.config();
  const index_t len = 10, rows = 3;
  rng r(9);
  std::vector<std::vector<std::int32_t>> seqs(rows);
  for (auto& s : seqs)
    for (index_t i = 0; i < len; ++i) s.push_back(std::int32_t(r.below(c.vocab)));
  backend::host_context ctx;
  models::decoder<Model> dec(m, ctx, rows, len);
  // Row 1 first decodes 4 throwaway tokens, then restarts: reset must forget them.
  std::vector<std::int32_t> feed(rows);
  for (index_t t = 0; t < 4; ++t) {
    for (index_t k = 0; k < rows; ++k) feed[k] = seqs[k][t];
    feed[1] = std::int32_t((t * 5 + 3) % c.vocab);
    dec.step(ctx, feed);
  }
  dec.reset(ctx, 0);
  dec.reset(ctx, 1);
  dec.reset(ctx, 2);
  double worst = 0;
  for (index_t t = 0; t < len; ++t) {
    for (index_t k = 0; k < rows; ++k) feed[k] = seqs[k][t];
    const auto* got = dec.step(ctx, feed);
    CHECK(dec.position(0) == t + 1);
    for (index_t k = 0; k < rows; ++k) {
      tensor<std::int32_t> ids(shape{1, t + 1});
      std::copy(seqs[k].begin(), seqs[k].begin() + t + 1, ids.data());
      m.reserve(1, t + 1, models::mode::infer);
      auto full = m.forward(ctx, ids.v());
      for (index_t v = 0; v < c.vocab; ++v)
        worst = std::max(worst, std::abs(double(full.data[t * c.vocab + v]) - double(got[k * c.vocab + v])));
    }
  }
  CHECK(worst < tol);
  CHECK_THROWS_AS(dec.step(ctx, feed), error);  // every row is full
}

}  // namespace

TEST_CASE("decoder: cached decoding equals full recomputation (Llama GQA, GPT-NeoX partial rotary)") {
  auto llama = tiny_model<models::llama<backend::cpu_ref, double>>(tiny_llama());
  check_decoder_matches_forward(llama, 1e-10);
  auto fast = tiny_model<models::llama<backend::cpu, float>>(tiny_llama());
  check_decoder_matches_forward(fast, 1e-3);
  auto nc = models::gpt_neox_config(19, 16, 2, 4, 32, 24);
  nc.rotary_pct = 0.5;
  auto neox = tiny_model<models::gpt_neox<backend::cpu_ref, double>>(nc);
  check_decoder_matches_forward(neox, 1e-10);
  auto tied_cfg = tiny_llama();
  tied_cfg.tie_embeddings = true;
  auto tied = tiny_model<models::llama<backend::cpu_ref, double>>(tied_cfg);
  check_decoder_matches_forward(tied, 1e-10);
}

TEST_CASE("sample_corpus: exact token count, documents start with BOS, deterministic by seed") {
  auto m = tiny_model<models::llama<backend::cpu>>(tiny_llama());
  backend::host_context ctx;
  const std::int32_t bos = 1;
  train::sampling s{.temperature = 1.0, .seed = 42};
  for (index_t n : {1, 7, 500, 1234}) {
    auto a = train::sample_corpus(m, ctx, n, s, bos, 12);
    CHECK(index_t(a.size()) == n);
    CHECK(a[0] == bos);
  }
  auto a = train::sample_corpus(m, ctx, 2000, s, bos, 12);
  auto b = train::sample_corpus(m, ctx, 2000, s, bos, 12);
  CHECK(a == b);
  auto other = s;
  other.seed = 43;
  CHECK(train::sample_corpus(m, ctx, 2000, other, bos, 12) != a);
  // The number of documents decoded side by side does not change the corpus.
  CHECK(train::sample_corpus(m, ctx, 2000, s, bos, 12, {.eos_id = std::nullopt, .parallel_docs = 3}) == a);

  // Documents: a BOS, then at most seq - 1 non-BOS tokens; every id in range.
  index_t docs = 0, longest = 0, run = 0;
  for (std::int32_t t : a) {
    CHECK((t >= 0 && t < 17));
    if (t == bos) {
      ++docs;
      run = 1;
    } else {
      ++run;
    }
    longest = std::max(longest, run);
  }
  CHECK(longest <= 12);
  CHECK(docs >= 2000 / 12);
  // Both endings occur with these weights: full-length documents and early BOS.
  CHECK(longest == 12);
  CHECK(docs > 2000 / 12 + 5);

  // With an EOS id, a document ends right after its EOS.
  auto e = train::sample_corpus(m, ctx, 3000, s, bos, 12, {.eos_id = 3});
  CHECK(e.size() == 3000);
  index_t eos_seen = 0;
  for (std::size_t i = 0; i + 1 < e.size(); ++i)
    if (e[i] == 3) {
      ++eos_seen;
      CHECK(e[i + 1] == bos);
    }
  CHECK(eos_seen > 0);

  // Greedy sampling, independently: every document is train::generate's greedy output from
  // BOS, cut at the sampled BOS (not kept). Pick a BOS id whose greedy run returns to it early.
  const train::sampling greedy{.temperature = 0};
  std::int32_t stop = -1;
  std::vector<std::int32_t> doc;
  for (std::int32_t cand = 0; cand < 17 && stop < 0; ++cand) {
    auto out = train::generate(m, ctx, {cand}, 11, greedy, cand);
    if (out.size() >= 3 && out.size() < 12 && out.back() == cand) {
      stop = cand;
      doc.assign(out.begin(), out.end() - 1);
    }
  }
  REQUIRE(stop >= 0);
  auto g = train::sample_corpus(m, ctx, 50, greedy, stop, 12);
  for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doc[i % doc.size()]);
}

TEST_CASE("sample_corpus: the token file round trip, and bad arguments throw") {
  auto m = tiny_model<models::llama<backend::cpu>>(tiny_llama());
  backend::host_context ctx;
  train::sampling s{.temperature = 1.0, .seed = 1};
  const std::string path =
      (std::filesystem::temp_directory_path() / ("hyena_sampled." + std::to_string(::getpid()))).string();
  auto ids = train::sample_corpus_file(path, m, ctx, 300, s, 1, 16);
  {
    io::token_file f(path);
    REQUIRE(f.size() == 300);
    CHECK(f.vocab() == 17);
    for (index_t i = 0; i < 300; ++i) CHECK(f.tokens()[i] == ids[std::size_t(i)]);
  }
  std::filesystem::remove(path);
  CHECK_THROWS_AS(train::sample_corpus(m, ctx, 0, s, 1, 16), error);
  CHECK_THROWS_AS(train::sample_corpus(m, ctx, 10, s, 1, 25), error);  // seq > max_seq
  CHECK_THROWS_AS(train::sample_corpus(m, ctx, 10, s, 1, 1), error);
  CHECK_THROWS_AS(train::sample_corpus(m, ctx, 10, s, 17, 16), error);  // bos outside the vocab
  CHECK_THROWS_AS(train::sample_corpus(m, ctx, 10, s, 1, 16, {.eos_id = -2}), error);
  CHECK_THROWS_AS(train::sample_corpus(m, ctx, 10, s, 1, 16, {.eos_id = std::nullopt, .parallel_docs = 0}), error);
  CHECK_THROWS_AS(train::sample_corpus(m, ctx, 10, train::sampling{.temperature = -1}, 1, 16), error);
  {
    backend::host_context c1;
    CHECK_THROWS_AS(models::decoder<models::llama<backend::cpu>>(m, c1, 2, 25), error);
  }
}
