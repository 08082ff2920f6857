// cpu/embedding.hpp: threaded embedding lookup and gradient (contract of cpu_ref/embedding.hpp).
#pragma once
#include <algorithm>
#include <cstdint>

#include "../context.hpp"
#include "elementwise.hpp"

namespace hyena::backend {

template <class Base>
struct cpu_embedding_ops : Base {
  template <class T>
  static void embedding_forward(host_context& ctx, index_t n_tokens, index_t dim, index_t vocab,
                                const std::int32_t* ids, const T* table, T* y) {
    // Validate everything first: an exception must not leave an OpenMP region.
    for (index_t t = 0; t < n_tokens; ++t)
      HYENA_CHECK(ids[t] >= 0 && ids[t] < vocab, "embedding: token id ", ids[t], " at position ", t,
                  " is out of range [0, ", vocab, ")");
    parallel_ranges(ctx, n_tokens, std::max<index_t>(1, (1 << 14) / std::max<index_t>(dim, 1)),
                    [&](index_t lo, index_t hi) {
      for (index_t t = lo; t < hi; ++t) std::copy_n(table + index_t(ids[t]) * dim, dim, y + t * dim);
    });
  }

  // Repeated ids hit the same table row, so threads split the columns, not the tokens:
  // no races, and every entry sums its tokens in the same order as cpu_ref.
  template <class T>
  static void embedding_backward(host_context& ctx, index_t n_tokens, index_t dim, const std::int32_t* ids,
                                 const T* dy, T* dtable) {
    parallel_ranges(ctx, dim, std::max<index_t>(16, (1 << 14) / std::max<index_t>(n_tokens, 1)),
                    [&](index_t lo, index_t hi) {
      for (index_t t = 0; t < n_tokens; ++t) {
        const T* src = dy + t * dim;
        T* dst = dtable + index_t(ids[t]) * dim;
        simd_for<T>(lo, hi, [&](auto tag, index_t c) {
          using V = decltype(tag);
          simd_store(simd_load<V>(dst + c) + simd_load<V>(src + c), dst + c);
        });
      }
    });
  }
};

}  // namespace hyena::backend
