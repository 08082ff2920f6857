// nn/layer.hpp: what every layer shares.
//
// A layer is a stateless type `L<Backend, Scalar>` with
//   config                         its sizes: a plain struct at namespace scope, shared by
//                                  every backend and scalar (`config::from(model_config)`
//                                  for block parts; mixers may add their own hparams, see
//                                  nn/mixer.hpp)
//   params  { visit(w, config) }   views into the parameter arena (grads use the same struct)
//   cache   { visit(w, config, batch, seq) }  what backward needs, in the activation arena
//   input_shape / output_shape     for (batch, seq)
//   init(config, params, rng)      a fresh initialisation
//   forward(ctx, config, params, cache, x, y)
//   backward(ctx, config, params, cache, dy, dx, grads)
// Conventions: parameter grads accumulate (+=), activation grads are assigned, and an
// empty dx means the caller does not need it (test dx.empty() before writing to it).
// nn/concepts.hpp states this contract as the concepts nn::layer / nn::mixer; models::block
// and models::with_mixer check it. hyena/testing/layer_check.hpp checks the conventions.
#pragma once
#include <cmath>

#include "../backend/backend.hpp"
#include "../model_config.hpp"
#include "../tensor/arena.hpp"
#include "../tensor/random.hpp"

namespace hyena::nn {

// Number of rows of a (..., cols) view, checking that its last dimension is `cols`.
template <class V>
index_t rows_of(const V& v, index_t cols, const char* what) {
  HYENA_CHECK(v.rank() >= 1 && v.size(v.rank() - 1) == cols, what, ": expected last dimension ", cols,
              ", got shape ", v.shape);
  HYENA_CHECK(v.contiguous(), what, ": must be contiguous");
  return v.numel() / cols;
}

// Throws unless `a` and `b` have the same shape.
template <class V1, class V2>
void check_same_shape(const V1& a, const V2& b, const char* what) {
  HYENA_CHECK(a.shape == b.shape, what, ": shapes differ, ", a.shape, " vs ", b.shape);
}

// Scratch that only a layer's backward (or a step inside its forward) needs, held by the context
// rather than by every layer's cache: one buffer of at least n values per Owner type, grown on
// demand and shared by every layer of that type, since they run one at a time. Its contents are
// whatever the last user left. Sharing it keeps the activation arena to what backward must keep
// from forward, and keeps the scratch warm in cache from one layer to the next.
template <class Owner, class B, class T>
T* context_scratch(typename B::context& ctx, index_t n) {
  struct held {
    tensor<T, typename B::memory> buf;
  };
  auto& h = ctx.template state<held>();
  if (h.buf.numel() < n) h.buf = tensor<T, typename B::memory>(shape{n});
  return h.buf.data();
}

}  // namespace hyena::nn
