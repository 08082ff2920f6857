// train/evaluate.hpp: loss and perplexity over a whole token file.
#pragma once
#include <cmath>

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
template <class Model>
eval_result evaluate(Model& model, typename Model::context& ctx, io::token_span tokens, const eval_options& o) {
  HYENA_CHECK(o.batch > 0 && o.seq > 0, "evaluate: batch and seq must be positive, got ", o.batch, " x ", o.seq);
  const auto previous = model.current_mode();
  const index_t pb = model.batch(), ps = model.seq();
  model.reserve(o.batch, o.seq, models::mode::infer);
  sequential_loader loader(tokens, o.batch, o.seq);
  token_batch b(o.batch, o.seq);
  double nll = 0;
  index_t scored = 0;
  while (true) {
    auto f = loader.next(b);
    if (f.windows == 0) break;
    auto logits = model.forward(ctx, b.inputs.v());
    nll += nn::cross_entropy_loss<typename Model::backend>(ctx, logits, b.targets.v()) * double(f.targets);
    scored += f.targets;
    if (o.max_tokens > 0 && scored >= o.max_tokens) break;
  }
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
