// layer_check.hpp: the installed layer checker (hyena/testing/layer_check.hpp) as doctest checks.
//   check_layer_gradients: central differences in double on cpu_ref, for the input and every
//                          parameter tensor, plus the calling conventions (contract_check: empty
//                          dx, accumulating gradients, guard regions)
//   check_layer_parity:    the fast `cpu` backend against `cpu_ref` in float, outputs and all
//                          gradients, with outputs poisoned (NaN) beforehand
#pragma once
#include <doctest/doctest.h>

#include <hyena/testing/layer_check.hpp>

namespace hyena::testing {

// One doctest check per report, with every failure line in its message.
inline void require_ok(const check_report& r) {
  INFO(r.str());
  CHECK(r.ok());
}

template <template <class, class> class L>
void check_layer_gradients(const typename L<backend::cpu_ref, double>::config& cfg, index_t batch, index_t seq,
                           std::uint64_t seed = 1, double rtol = 1e-5, double atol = 1e-8, index_t max_checks = 48,
                           double eps = 1e-6) {
  require_ok(gradient_check<L>(cfg, batch, seq, {.seed = seed, .rtol = rtol, .atol = atol, .max_checks = max_checks, .eps = eps}));
  require_ok(contract_check<L>(cfg, batch, seq, seed + 2));
}

template <template <class, class> class L>
void check_layer_parity(const typename L<backend::cpu, float>::config& cfg, index_t batch, index_t seq,
                        std::uint64_t seed = 2, double rtol = 1e-4, double atol = 1e-5) {
  require_ok(parity_check<L>(cfg, batch, seq, {.seed = seed, .rtol = rtol, .atol = atol}));
}

}  // namespace hyena::testing
