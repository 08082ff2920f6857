// train/sample_corpus.hpp: a synthetic training corpus sampled from a teacher (data-free
// distillation: the student learns from what the teacher writes, no dataset needed).
//
// Document d starts with BOS and continues with tokens sampled from the teacher until it
// samples EOS (kept) or BOS (not kept: the next document starts with its own BOS), or the
// document holds `seq` tokens. Documents are concatenated in order and the result cut to
// exactly n_tokens. Document d draws from its own rng, seeded from (seed, d), so the corpus
// is a function of the seed alone, however many documents run side by side (up to float
// rounding of differently shaped products). Decoding uses the key/value cache path.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../io/token_file.hpp"
#include "data_loader.hpp"
#include "generate.hpp"
#include "../models/decoder.hpp"

namespace hyena::train {

struct sample_corpus_options {
  std::optional<std::int32_t> eos_id;  // also ends a document (and is kept) when set
  // Documents decoded side by side as rows of one step. With the cache one row already
  // runs ~3.5k tokens/s on one core (stories260K), and wider steps measured no faster.
  index_t parallel_docs = 1;
};

template <class Model>
std::vector<std::int32_t> sample_corpus(Model& teacher, typename Model::context& ctx, index_t n_tokens,
                                        const sampling& s, std::int32_t bos_id, index_t seq,
                                        const sample_corpus_options& o = {}) {
  s.validate();
  const auto& c = teacher.config();
  HYENA_CHECK(n_tokens > 0, "sample_corpus: n_tokens must be positive, got ", n_tokens);
  HYENA_CHECK(seq >= 2 && seq <= c.max_seq, "sample_corpus: seq ", seq, " must be in [2, max_seq = ", c.max_seq, "]");
  HYENA_CHECK(bos_id >= 0 && bos_id < c.vocab, "sample_corpus: bos_id ", bos_id, " outside [0, ", c.vocab, ")");
  HYENA_CHECK(!o.eos_id || (*o.eos_id >= 0 && *o.eos_id < c.vocab), "sample_corpus: eos_id ", o.eos_id.value_or(0),
              " outside [0, ", c.vocab, ")");
  HYENA_CHECK(o.parallel_docs > 0, "sample_corpus: parallel_docs must be positive, got ", o.parallel_docs);

  const index_t rows = std::min(o.parallel_docs, n_tokens);
  models::decoder<Model> dec(teacher, ctx, rows, seq);
  std::vector<std::vector<std::int32_t>> docs;  // by document index
  std::vector<rng> rngs;
  std::vector<index_t> doc_of(std::size_t(rows), -1);  // -1: idle
  std::vector<std::int32_t> feed(std::size_t(rows), bos_id);
  index_t finished_tokens = 0, running = 0;

  auto launch = [&](index_t r) {
    const index_t d = index_t(docs.size());
    docs.push_back({bos_id});
    rngs.emplace_back(detail::mix64(s.seed ^ detail::mix64(std::uint64_t(d) + 0x5eed)));
    doc_of[std::size_t(r)] = d;
    feed[std::size_t(r)] = bos_id;
    dec.reset(ctx, r);
    ++running;
  };
  // Start documents until the finished ones surely cover n_tokens.
  auto maybe_launch = [&](index_t r) {
    if (finished_tokens < n_tokens) launch(r);
    else {
      doc_of[std::size_t(r)] = -1;
      feed[std::size_t(r)] = bos_id;
      dec.reset(ctx, r);  // idle rows decode a throwaway BOS at position 0
    }
  };
  for (index_t r = 0; r < rows; ++r) launch(r);
  while (running > 0) {
    const auto* out = dec.step(ctx, feed);
    for (index_t r = 0; r < rows; ++r) {
      const index_t d = doc_of[std::size_t(r)];
      if (d < 0) {
        dec.reset(ctx, r);
        continue;
      }
      auto& doc = docs[std::size_t(d)];
      const std::int32_t next = sample_token(out + r * c.vocab, c.vocab, s, rngs[std::size_t(d)]);
      const bool eos = o.eos_id && next == *o.eos_id;
      if (next != bos_id) doc.push_back(next);
      if (next == bos_id || eos || index_t(doc.size()) >= seq) {
        finished_tokens += index_t(doc.size());
        --running;
        maybe_launch(r);
      } else {
        feed[std::size_t(r)] = next;
      }
    }
  }
  std::vector<std::int32_t> corpus;
  corpus.reserve(std::size_t(n_tokens));
  for (const auto& doc : docs) {
    const index_t take = std::min<index_t>(index_t(doc.size()), n_tokens - index_t(corpus.size()));
    corpus.insert(corpus.end(), doc.begin(), doc.begin() + take);
    if (index_t(corpus.size()) == n_tokens) break;
  }
  HYENA_CHECK(index_t(corpus.size()) == n_tokens, "sample_corpus: internal error, sampled ", corpus.size(),
              " of ", n_tokens, " tokens");
  return corpus;
}

// sample_corpus written to a token file (atomically); returns the tokens as well.
template <class Model>
std::vector<std::int32_t> sample_corpus_file(const std::string& path, Model& teacher, typename Model::context& ctx,
                                             index_t n_tokens, const sampling& s, std::int32_t bos_id, index_t seq,
                                             const sample_corpus_options& o = {}) {
  auto ids = sample_corpus(teacher, ctx, n_tokens, s, bos_id, seq, o);
  io::write_token_file(path, ids, teacher.config().vocab);
  return ids;
}

}  // namespace hyena::train
