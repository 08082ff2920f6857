// triangle.hpp: which part of a matrix product may be skipped.
//
// Causal attention multiplies matrices that are half zeros (probabilities of future keys)
// or whose upper half nobody reads (scores of future keys). Saying so to gemm_batched lets a
// backend skip that half of the work; a backend may also ignore it and compute everything,
// which is always correct (the reference backend does, apart from skipping the zero terms).
#pragma once

namespace hyena::backend {

enum class triangle {
  none,     // the full product
  c_lower,  // only C[i][j] with j <= i is needed: the entries above the diagonal are unspecified
  a_lower,  // op(A)[i][p] == 0 for p > i, so those terms may be skipped
  a_upper,  // op(A)[i][p] == 0 for p < i, so those terms may be skipped
};

}  // namespace hyena::backend
