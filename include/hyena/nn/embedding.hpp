// nn/embedding.hpp: token embedding, ids (batch, seq) int32 -> (batch, seq, dim).
#pragma once
#include <cstdint>

#include "layer.hpp"

namespace hyena::nn {

struct embedding_config {
  index_t vocab = 0, dim = 0;
  double init_std = 0.02;
  static embedding_config from(const model_config& m) { return {.vocab = m.vocab, .dim = m.hidden}; }
};

template <class B, class T>
struct embedding {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using ids_view = view_of<B, const std::int32_t>;
  using config = embedding_config;

  struct params {
    tview weight;  // (vocab, dim)
    template <class W>
    void visit(W& w, const config& c) {
      w("weight", weight, {c.vocab, c.dim});
    }
  };

  struct cache {
    ids_view ids;  // the token ids, kept by reference
    template <class W>
    void visit(W&, const config&, index_t, index_t) {}
  };

  static shape input_shape(const config&, index_t batch, index_t seq) { return {batch, seq}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.dim}; }

  static void init(const config& c, params& p, rng& r) { fill_normal(p.weight, r, c.init_std); }

  // Throws hyena::error naming the id and vocab when an id is outside [0, vocab).
  static void forward(context& ctx, const config& c, const params& p, cache& k, ids_view ids, tview y) {
    HYENA_CHECK(c.vocab > 0 && c.dim > 0, "embedding: vocab (", c.vocab, ") and dim (", c.dim, ") must be positive");
    HYENA_CHECK(ids.contiguous(), "embedding ids: must be contiguous");
    index_t rows = rows_of(y, c.dim, "embedding output");
    HYENA_CHECK(rows == ids.numel(), "embedding: output has ", rows, " rows for ", ids.numel(), " token ids (",
                ids.shape, " vs ", y.shape, ")");
    B::embedding_forward(ctx, rows, c.dim, c.vocab, ids.data, p.weight.data, y.data);
    k.ids = ids;
  }

  // Accumulates into the table's gradient; the ids have no gradient.
  static void backward(context& ctx, const config& c, const params&, const cache& k, ctview dy, params& g) {
    index_t rows = rows_of(dy, c.dim, "embedding output gradient");
    HYENA_CHECK(rows == k.ids.numel(), "embedding: gradient has ", rows, " rows, forward had ", k.ids.numel(),
                " tokens");
    B::embedding_backward(ctx, rows, c.dim, k.ids.data, dy.data, g.weight.data);
  }
};

}  // namespace hyena::nn
