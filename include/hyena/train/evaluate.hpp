// train/evaluate.hpp: loss and perplexity over a whole token file.
#pragma once
#include <cmath>

#include "../dist/communicator.hpp"
#include "../io/token_span.hpp"
#include "../models/causal_lm.hpp"
#include "../nn/loss.hpp"
#include "data_loader.hpp"

namespace hyena::train {

struct eval_result {
  double loss = 0;        // mean negative log-likelihood per token (nats)
  double perplexity = 0;  // exp(loss)
  index_t tokens = 0;     // targets scored
  double bits_per_byte = 0;   // when the text's byte count is known
  double word_perplexity = 0; // when its word count is known (WikiText convention)
};

struct eval_options {
  index_t batch = 0, seq = 0;   // window shape (the trainer fills 0 with its own)
  index_t max_tokens = 0;       // 0: the whole file
  double source_bytes = 0;      // bytes of text the scored tokens stand for (scaled if truncated)
  double source_words = 0;      // words of text (for word-level perplexity)
};

// Walks `tokens` in order with non-overlapping windows (each token after the first is
// scored exactly once, with the context of its own window).
//
// With a communicator of N ranks, the batches a single process would score are dealt out in
// turn (batch k to rank k mod N) and the sums are reduced, so every rank returns the same
// result as one process, up to the order of the additions. Every rank must call it.
template <class Model>
eval_result evaluate(Model& model, typename Model::context& ctx, io::token_span tokens, const eval_options& o,
                     dist::communicator& comm = dist::local()) {
  HYENA_CHECK(o.batch > 0 && o.seq > 0, "evaluate: batch and seq must be positive, got ", o.batch, " x ", o.seq);
  const auto previous = model.current_mode();
  const index_t pb = model.batch(), ps = model.seq();
  model.reserve(o.batch, o.seq, models::mode::infer);
  sequential_loader loader(tokens, o.batch, o.seq);
  staged_batch<typename Model::backend::memory> staged(o.batch, o.seq);
  double sums[2] = {0, 0};  // negative log-likelihood, targets scored
  index_t counted = 0;      // targets a single process would have scored so far (the max_tokens rule)
  for (index_t k = 0;; ++k) {
    auto f = loader.next(staged.host());
    if (f.windows == 0) break;
    if (k % comm.size() == comm.rank()) {
      auto& b = staged.ready();
      auto logits = model.forward(ctx, b.inputs.v());
      sums[0] += nn::cross_entropy_loss<typename Model::backend>(ctx, logits, b.targets.v()) * double(f.targets);
      sums[1] += double(f.targets);
    }
    counted += f.targets;
    if (o.max_tokens > 0 && counted >= o.max_tokens) break;
  }
  comm.all_reduce_sum(sums, 2);
  const double nll = sums[0];
  const index_t scored = index_t(sums[1]);
  if (pb > 0) model.reserve(pb, ps, previous);
  eval_result r;
  r.tokens = scored;
  r.loss = scored ? nll / double(scored) : 0.0;
  r.perplexity = std::exp(r.loss);
  const double fraction = tokens.size() > 1 ? double(scored) / double(tokens.size() - 1) : 1.0;
  if (o.source_bytes > 0) r.bits_per_byte = nll / (std::log(2.0) * o.source_bytes * fraction);
  if (o.source_words > 0) r.word_perplexity = std::exp(nll / (o.source_words * fraction));
  return r;
}

}  // namespace hyena::train
