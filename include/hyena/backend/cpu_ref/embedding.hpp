// cpu_ref/embedding.hpp: token embedding lookup and its gradient as plain loops.
#pragma once
#include <cstdint>

#include "../context.hpp"

namespace hyena::backend {

struct ref_embedding_ops {
  // y[t, :] = table[ids[t], :] for t < n_tokens; table is (vocab, dim). Throws hyena::error
  // naming the token position, the id and vocab when an id is outside [0, vocab).
  template <class T>
  static void embedding_forward(host_context&, index_t n_tokens, index_t dim, index_t vocab, const std::int32_t* ids,
                                const T* table, T* y) {
    for (index_t t = 0; t < n_tokens; ++t) {
      HYENA_CHECK(ids[t] >= 0 && ids[t] < vocab, "embedding: token id ", ids[t], " at position ", t,
                  " is out of range [0, ", vocab, ")");
      for (index_t c = 0; c < dim; ++c) y[t * dim + c] = table[index_t(ids[t]) * dim + c];
    }
  }

  // dtable[ids[t], :] += dy[t, :], tokens in order (ids were checked by forward).
  template <class T>
  static void embedding_backward(host_context&, index_t n_tokens, index_t dim, const std::int32_t* ids, const T* dy,
                                 T* dtable) {
    for (index_t t = 0; t < n_tokens; ++t)
      for (index_t c = 0; c < dim; ++c) dtable[index_t(ids[t]) * dim + c] += dy[t * dim + c];
  }
};

}  // namespace hyena::backend
