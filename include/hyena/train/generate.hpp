// train/generate.hpp: sampling the next token from logits, and autoregressive generation.
//
// sample_token filters in the usual order: temperature, then top-k (the k highest logits),
// then top-p (the smallest set of the highest-probability survivors whose renormalised mass
// reaches p), then one draw from what is left. Temperature 0 is greedy decoding. Every tie
// is broken towards the lower id, so results depend only on the logits and the rng.
//
// generate decodes incrementally (models/decoder.hpp) when the model's mixer can: a
// key/value cache for attention, the input history (exact) or a modal recurrence (constant
// cost per token) for Hyena; the prompt goes through one ordinary forward. Past max_seq tokens
// the exact paths slide a window of the last max_seq tokens, as recompute does (each new token
// then costs one forward); a modal form has no window. decode_mode::recompute reruns the
// model over the window for every token (any mixer; the reference the others are tested
// against).
#pragma once
#include <type_traits>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../tensor/transfer.hpp"
#include "../models/causal_lm.hpp"
#include "../models/decoder.hpp"
#include "../tensor/random.hpp"
#include "../tensor/tensor.hpp"

namespace hyena::train {

struct sampling {
  double temperature = 1.0;  // 0: greedy (argmax)
  index_t top_k = 0;         // 0: no top-k filter
  double top_p = 1.0;        // 1: no nucleus filter
  std::uint64_t seed = 0;    // for generate's rng

  void validate() const {
    HYENA_CHECK(std::isfinite(temperature) && temperature >= 0, "sampling: temperature must be finite and >= 0, got ",
                temperature);
    HYENA_CHECK(top_k >= 0, "sampling: top_k must be >= 0, got ", top_k);
    HYENA_CHECK(top_p > 0 && top_p <= 1, "sampling: top_p must be in (0, 1], got ", top_p);
  }
};

// The next token given `vocab` logits.
template <class T>
std::int32_t sample_token(const T* logits, index_t vocab, const sampling& s, rng& r) {
  s.validate();
  HYENA_CHECK(logits != nullptr && vocab > 0, "sample_token: need at least one logit, got vocab ", vocab);
  index_t best = 0;
  for (index_t i = 0; i < vocab; ++i) {
    const double v = double(logits[i]);
    HYENA_CHECK(!std::isnan(v) && !(std::isinf(v) && v > 0), "sample_token: logit ", i, " is ", v);
    if (logits[i] > logits[best]) best = i;  // strict: ties stay with the lower id
  }
  HYENA_CHECK(std::isfinite(double(logits[best])), "sample_token: every logit is -inf");
  if (s.temperature == 0 || s.top_k == 1) return static_cast<std::int32_t>(best);

  // Candidates from most to least likely (ties: lower id first). Sorting is only needed
  // when a filter cuts the list; otherwise the draw walks the ids in order.
  std::vector<std::int32_t> ids(static_cast<std::size_t>(vocab));
  std::iota(ids.begin(), ids.end(), 0);
  auto before = [&](std::int32_t a, std::int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::size_t keep = ids.size();
  if (s.top_k > 0 && s.top_k < vocab) {
    keep = static_cast<std::size_t>(s.top_k);
    std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), before);
  } else if (s.top_p < 1) {
    std::sort(ids.begin(), ids.end(), before);
  }

  // Unnormalised probabilities exp((l - max) / temperature), in double.
  const double top = double(logits[best]);
  std::vector<double> w(keep);
  double total = 0;
  for (std::size_t i = 0; i < keep; ++i) total += w[i] = std::exp((double(logits[ids[i]]) - top) / s.temperature);

  if (s.top_p < 1) {
    // The smallest prefix with mass >= top_p; the slack absorbs rounding in the running sum.
    const double target = s.top_p * total * (1 - 1e-12);
    double mass = 0;
    std::size_t n = 0;
    while (n < keep && mass < target) mass += w[n++];
    keep = std::max<std::size_t>(n, 1);
    total = mass;
  }

  double u = r.uniform(0.0, total);
  for (std::size_t i = 0; i < keep; ++i) {
    if (u < w[i]) return ids[i];
    u -= w[i];
  }
  // Rounding left u a hair past the end: the last candidate with any mass.
  for (std::size_t i = keep; i-- > 0;)
    if (w[i] > 0) return ids[i];
  return ids[0];
}

enum class decode_mode { automatic, exact, modal, recompute };

inline decode_mode parse_decode_mode(const std::string& s) {
  if (s == "auto") return decode_mode::automatic;
  if (s == "exact") return decode_mode::exact;
  if (s == "modal") return decode_mode::modal;
  if (s == "recompute") return decode_mode::recompute;
  HYENA_FAIL("unknown decode mode '", s, "' (expected auto, exact, modal or recompute)");
}

template <class T>
struct generate_options {
  std::optional<std::int32_t> stop_token;  // stop after appending it
  // automatic: modal when a modal form is given, else exact when the mixer decodes, else recompute.
  decode_mode decode = decode_mode::automatic;
  const nn::hyena_modal_form<T>* modal = nullptr;
  std::function<void(std::int32_t)> on_token;  // called with each new token as it is chosen (streaming)
};

// The prompt followed by up to max_new_tokens sampled tokens (batch 1, inference mode).
// The model's previous activation sizing is restored afterwards, as evaluate does.
template <class Model>
std::vector<std::int32_t> generate(Model& model, typename Model::context& ctx, std::vector<std::int32_t> prompt,
                                   index_t max_new_tokens, const sampling& s,
                                   const generate_options<typename Model::scalar>& o) {
  using T = typename Model::scalar;
  s.validate();
  const index_t vocab = model.config().vocab, max_seq = model.config().max_seq;
  HYENA_CHECK(!prompt.empty(), "generate: the prompt is empty (start it with the tokenizer's BOS)");
  HYENA_CHECK(max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ", max_new_tokens);
  for (std::size_t i = 0; i < prompt.size(); ++i)
    HYENA_CHECK(prompt[i] >= 0 && prompt[i] < vocab, "generate: prompt token ", prompt[i], " at ", i,
                " outside [0, ", vocab, ")");
  constexpr bool decodable = models::decodable_mixer<typename Model::block_type::mixer>;
  decode_mode mode = o.decode;
  if (mode == decode_mode::automatic)
    mode = o.modal ? decode_mode::modal : decodable ? decode_mode::exact : decode_mode::recompute;
  HYENA_CHECK(mode != decode_mode::modal || o.modal, "generate: modal decoding needs a modal form (hyena convert "
              "--modal-order d writes one into the checkpoint)");
  rng r(s.seed);
  std::vector<std::int32_t> out = std::move(prompt);
  out.reserve(out.size() + static_cast<std::size_t>(max_new_tokens));
  using memory = typename Model::backend::memory;
  constexpr bool on_host = std::is_same_v<memory, host_memory>;
  std::vector<T> row(on_host ? 0 : static_cast<std::size_t>(vocab));  // a device's logits, read back
  // Appends a token chosen from `logits` (a row of vocab values in the model's memory); false
  // once generation is over.
  auto take = [&](const T* logits) {
    if constexpr (!on_host) {
      memory::to_host(row.data(), logits, sizeof(T) * std::size_t(vocab));
      logits = row.data();
    }
    const std::int32_t next = sample_token(logits, vocab, s, r);
    out.push_back(next);
    if (o.on_token) o.on_token(next);
    return !(o.stop_token && next == *o.stop_token);
  };
  // The last (up to) n tokens as a (1, n) tensor in the model's memory.
  auto window = [&](index_t n) {
    tensor<std::int32_t> w(shape{1, n});
    std::copy(out.end() - n, out.end(), w.data());
    if constexpr (on_host) return w;
    else return to_memory<memory>(w);
  };
  if (max_new_tokens == 0) return out;
  if (mode == decode_mode::recompute) {
    const auto previous = model.current_mode();
    const index_t pb = model.batch(), ps = model.seq();
    for (index_t step = 0; step < max_new_tokens; ++step) {
      const index_t n = std::min<index_t>(index_t(out.size()), max_seq);
      auto w = window(n);
      model.reserve(1, n, models::mode::infer);
      if (!take(model.forward(ctx, w.v()).data + (n - 1) * vocab)) break;
    }
    if (pb > 0) model.reserve(pb, ps, previous);
    return out;
  }
  if constexpr (decodable) {
    const index_t total = index_t(out.size()) + max_new_tokens;
    const bool modal = mode == decode_mode::modal;
    models::decoder<Model> dec(model, ctx, 1, std::min(total, max_seq), modal ? o.modal : nullptr);
    auto prompt_window = window(std::min<index_t>(index_t(out.size()), max_seq));
    if (!take(dec.prefill(ctx, prompt_window.v()))) return out;
    for (index_t step = 1; step < max_new_tokens; ++step) {
      const T* logits;
      if (modal || dec.position(0) < dec.max_len()) {
        logits = dec.step(ctx, std::span<const std::int32_t>(&out.back(), 1));
      } else {  // the exact state is full: slide the window
        auto w = window(max_seq);
        logits = dec.prefill(ctx, w.v());
      }
      if (!take(logits)) break;
    }
    return out;
  } else {
    HYENA_FAIL("generate: this model's mixer has no incremental decoding; use decode_mode::recompute");
  }
}

// The same with only a stop token (decoding: automatic).
template <class Model>
std::vector<std::int32_t> generate(Model& model, typename Model::context& ctx, std::vector<std::int32_t> prompt,
                                   index_t max_new_tokens, const sampling& s,
                                   std::optional<std::int32_t> stop_token = {}) {
  generate_options<typename Model::scalar> o;
  o.stop_token = stop_token;
  return generate(model, ctx, std::move(prompt), max_new_tokens, s, o);
}

}  // namespace hyena::train
