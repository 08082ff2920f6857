// Every library layer and mixer, and the example's user mixer, meets the contract of
// nn/concepts.hpp on both CPU backends; layers with their own calling convention do not.
#include <hyena/hyena.hpp>
#include <hyena/nn/concepts.hpp>
#include <hyena/nn/gelu.hpp>
#include <hyena/nn/implicit_filter.hpp>
#include <hyena/nn/rotary.hpp>
#include <hyena/nn/short_conv.hpp>

#include "../../examples/ema_mixer.hpp"
#include <doctest/doctest.h>

using namespace hyena;

template <class B, class T>
constexpr bool contracts_hold() {
  static_assert(nn::check_mixer<nn::attention<B, T>>());
  static_assert(nn::check_mixer<nn::hyena_operator<B, T>>());
  static_assert(nn::check_mixer<example::ema_mixer<B, T>>());
  static_assert(nn::mixer<nn::attention<B, T>> && nn::mixer<nn::hyena_operator<B, T>> &&
                nn::mixer<example::ema_mixer<B, T>>);
  static_assert(nn::layer<nn::gelu_mlp<B, T>> && nn::layer<nn::swiglu_mlp<B, T>>);
  static_assert(nn::layer<nn::layer_norm<B, T>> && nn::layer<nn::rms_norm<B, T>>);
  static_assert(nn::layer<nn::linear<B, T>> && nn::layer<nn::gelu<B, T>> && nn::layer<nn::rotary<B, T>> &&
                nn::layer<nn::short_conv<B, T>>);
  // Token ids in, or a filter out of nothing: not the (x -> y) contract.
  static_assert(!nn::layer<nn::embedding<B, T>> && !nn::layer<nn::implicit_filter<B, T>>);
  // A layer is not a mixer unless its config comes from the model.
  static_assert(!nn::mixer<nn::linear<B, T>>);
  return true;
}

static_assert(contracts_hold<backend::cpu, float>());
static_assert(contracts_hold<backend::cpu_ref, double>());

TEST_CASE("concepts: library layers and the example mixer meet the contract") {
  CHECK(contracts_hold<backend::cpu, float>());
  CHECK(nn::mixer<nn::hyena_operator<backend::cpu_ref, float>>);
}
