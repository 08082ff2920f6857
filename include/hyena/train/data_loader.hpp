// train/data_loader.hpp: batches of (inputs, targets) windows over a token span.
//
// random_window_loader: training batches of B windows of T+1 consecutive tokens at random
//   offsets; inputs = window[0, T), targets = window[1, T+1). Each offset is a hash of
//   (seed, step, row), so the whole state is the step counter: a resumed run that sets
//   the step continues with exactly the batches it would have seen. In data-parallel runs
//   (dist/communicator.hpp) rank r of N reads rows [r B, (r + 1) B) of a global batch of N B
//   rows (`first_row` = r B): no two ranks read the same row, together they read exactly what
//   one process with batch N B would, and the position (the step) is the same on every rank.
// sequential_loader: the validation walk, non-overlapping windows in order. Window w has
//   inputs tokens[wT, wT+T) and targets tokens[wT+1, wT+T+1), so every token but the first
//   is a target exactly once. The last window is usually partial: its missing positions,
//   and rows past the last window in the final batch, get input 0 and target
//   `ignore_target` (-1), which losses skip. Right padding leaves a causal model's
//   predictions at the real positions unchanged.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../io/token_span.hpp"
#include "../tensor/tensor.hpp"

namespace hyena::train {

inline constexpr std::int32_t ignore_target = -1;

// Owned (batch, seq) int32 inputs and targets in `Memory`, for callers that do not bring their own.
// The loaders fill host batches; a device batch is filled by copying a host one (upload_batch).
template <class Memory = host_memory>
struct basic_token_batch {
  tensor<std::int32_t, Memory> inputs, targets;
  basic_token_batch(index_t batch, index_t seq) : inputs(shape{batch, seq}), targets(shape{batch, seq}) {}
};
using token_batch = basic_token_batch<host_memory>;

// Copies a host batch into a batch of the same shape in Memory (a device's), both tensors.
template <class Memory>
void upload_batch(const token_batch& host, basic_token_batch<Memory>& dst) {
  HYENA_CHECK(host.inputs.shape() == dst.inputs.shape() && host.targets.shape() == dst.targets.shape(),
              "upload_batch: the batches' shapes differ");
  Memory::to_device(dst.inputs.data(), host.inputs.data(), sizeof(std::int32_t) * std::size_t(host.inputs.numel()));
  Memory::to_device(dst.targets.data(), host.targets.data(), sizeof(std::int32_t) * std::size_t(host.targets.numel()));
}

// The batch a loader fills for a model whose tensors live in Memory: the model's own batch when
// that is host memory, else a host staging batch that `ready()` uploads. So the training and
// evaluation loops read the same way on every backend.
template <class Memory>
class staged_batch {
 public:
  staged_batch(index_t batch, index_t seq) : host_(batch, seq), dev_(on_host ? 0 : batch, on_host ? 0 : seq) {}
  token_batch& host() { return host_; }  // what the loader fills
  // The batch in Memory, current after the last fill of host().
  basic_token_batch<Memory>& ready() {
    if constexpr (on_host) {
      return host_;
    } else {
      upload_batch(host_, dev_);
      return dev_;
    }
  }

 private:
  static constexpr bool on_host = std::is_same_v<Memory, host_memory>;
  token_batch host_;
  basic_token_batch<Memory> dev_;  // empty for host memory
};

namespace detail {
// SplitMix64's finaliser: a bijective 64-bit mix, good enough to pick offsets.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
inline void check_batch_views(const view<std::int32_t>& in, const view<std::int32_t>& tg, index_t b, index_t t,
                              const char* who) {
  HYENA_CHECK(in.shape == (shape{b, t}) && tg.shape == (shape{b, t}), who, ": inputs and targets must be (", b,
              ", ", t, "), got ", in.shape, " and ", tg.shape);
  HYENA_CHECK(in.contiguous() && tg.contiguous(), who, ": inputs and targets must be contiguous");
}
}  // namespace detail

class random_window_loader {
 public:
  random_window_loader(io::token_span tokens, index_t batch, index_t seq, std::uint64_t seed, index_t step = 0,
                       index_t first_row = 0)
      : tokens_(tokens), batch_(batch), seq_(seq), seed_(seed), step_(step), first_row_(first_row) {
    HYENA_CHECK(batch > 0 && seq > 0, "random_window_loader: batch and seq must be positive, got ", batch, ", ", seq);
    HYENA_CHECK(tokens.size() >= seq + 1, "random_window_loader: ", tokens.size(), " tokens, need at least seq + 1 = ",
                seq + 1);
    HYENA_CHECK(step >= 0, "random_window_loader: negative step ", step);
    HYENA_CHECK(first_row >= 0, "random_window_loader: negative first_row ", first_row);
  }

  // First token of row `row`'s window at `step`, uniform over [0, size - seq).
  index_t window_start(index_t step, index_t row) const {
    std::uint64_t h = detail::mix64(detail::mix64(seed_ ^ detail::mix64(std::uint64_t(step))) + std::uint64_t(row));
    auto starts = static_cast<unsigned __int128>(tokens_.size() - seq_);
    return static_cast<index_t>((static_cast<unsigned __int128>(h) * starts) >> 64);
  }

  // Fills (batch, seq) inputs and targets for the current step, then advances it.
  void next(view<std::int32_t> inputs, view<std::int32_t> targets) {
    detail::check_batch_views(inputs, targets, batch_, seq_, "random_window_loader");
    for (index_t b = 0; b < batch_; ++b) {
      index_t s = window_start(step_, first_row_ + b);
      tokens_.copy_to(s, seq_, inputs.data + b * seq_);
      tokens_.copy_to(s + 1, seq_, targets.data + b * seq_);
    }
    ++step_;
  }
  void next(token_batch& out) { next(out.inputs.v(), out.targets.v()); }

  // The state to checkpoint: the next batch is a function of (seed, step) alone.
  index_t step() const { return step_; }
  void set_step(index_t s) {
    HYENA_CHECK(s >= 0, "random_window_loader: negative step ", s);
    step_ = s;
  }
  std::uint64_t seed() const { return seed_; }
  index_t batch() const { return batch_; }
  index_t seq() const { return seq_; }

 private:
  io::token_span tokens_;
  index_t batch_, seq_;
  std::uint64_t seed_;
  index_t step_;
  index_t first_row_;  // this rank's first row of the global batch
};

class sequential_loader {
 public:
  struct filled {
    index_t windows = 0;  // rows holding real windows (0: the walk is over)
    index_t targets = 0;  // targets that are not ignore_target
  };

  sequential_loader(io::token_span tokens, index_t batch, index_t seq) : tokens_(tokens), batch_(batch), seq_(seq) {
    HYENA_CHECK(batch > 0 && seq > 0, "sequential_loader: batch and seq must be positive, got ", batch, ", ", seq);
    HYENA_CHECK(tokens.size() >= 2, "sequential_loader: need at least 2 tokens, got ", tokens.size());
  }

  index_t windows() const { return (tokens_.size() - 1 + seq_ - 1) / seq_; }
  index_t batches() const { return (windows() + batch_ - 1) / batch_; }
  index_t total_targets() const { return tokens_.size() - 1; }

  // Fills the next batch of windows; returns what was filled ({0, 0} once the walk is done).
  filled next(view<std::int32_t> inputs, view<std::int32_t> targets) {
    detail::check_batch_views(inputs, targets, batch_, seq_, "sequential_loader");
    filled f;
    for (index_t b = 0; b < batch_; ++b) {
      std::int32_t* in = inputs.data + b * seq_;
      std::int32_t* tg = targets.data + b * seq_;
      index_t n = 0;  // real positions in this row
      if (window_ < windows()) {
        index_t start = window_ * seq_;
        n = std::min(seq_, total_targets() - start);
        tokens_.copy_to(start, n, in);
        tokens_.copy_to(start + 1, n, tg);
        ++window_;
        ++f.windows;
        f.targets += n;
      }
      for (index_t t = n; t < seq_; ++t) {
        in[t] = 0;
        tg[t] = ignore_target;
      }
    }
    return f;
  }
  filled next(token_batch& out) { return next(out.inputs.v(), out.targets.v()); }

  // Index of the next window; set it to resume a walk, reset() to start over.
  index_t position() const { return window_; }
  void set_position(index_t w) {
    HYENA_CHECK(w >= 0 && w <= windows(), "sequential_loader: position ", w, " outside [0, ", windows(), "]");
    window_ = w;
  }
  void reset() { window_ = 0; }
  index_t batch() const { return batch_; }
  index_t seq() const { return seq_; }

 private:
  io::token_span tokens_;
  index_t batch_, seq_;
  index_t window_ = 0;
};

}  // namespace hyena::train
