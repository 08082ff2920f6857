// nn/concepts.hpp: the layer contract (nn/layer.hpp) and the mixer contract (nn/mixer.hpp) as
// concepts, and checks that say in one line what a layer is missing.
//
//   static_assert(hyena::nn::mixer<my_mixer<backend::cpu, float>>);
//   static_assert(hyena::nn::check_mixer<my_mixer<backend::cpu, float>>());  // readable errors
//
// `layer<L>` / `mixer<L>` answer yes or no. `check_layer<L>()` / `check_mixer<L>()` stop at the
// first broken requirement with a static_assert that names it (the compiler's "required from"
// lines name the layer); models::block and models::with_mixer call them, so a broken mixer
// fails where the model is composed, before any error deep inside the library.
#pragma once
#include <concepts>
#include <type_traits>

#include "../backend/backend.hpp"
#include "../backend/cpu/cpu.hpp"
#include "../tensor/arena.hpp"
#include "../tensor/random.hpp"
#include "layer.hpp"
#include "mixer.hpp"

namespace hyena::nn {

namespace contract {

// L = Tmpl<Backend, Scalar>: its backend, scalar, and the same template at other arguments.
template <class L>
struct layer_args {
  static constexpr bool is_template = false;
};
template <template <class, class> class Tmpl, class B, class T>
struct layer_args<Tmpl<B, T>> {
  static constexpr bool is_template = true;
  using backend = B;
  using scalar = T;
  template <class B2, class T2>
  using rebind = Tmpl<B2, T2>;
};
// ... or Tmpl<Backend, Scalar, values...>, a layer with compile-time options of its own.
template <template <class, class, auto...> class Tmpl, class B, class T, auto... V>
  requires(sizeof...(V) > 0)
struct layer_args<Tmpl<B, T, V...>> {
  static constexpr bool is_template = true;
  using backend = B;
  using scalar = T;
  template <class B2, class T2>
  using rebind = Tmpl<B2, T2, V...>;
};

template <class L>
using backend_t = typename layer_args<L>::backend;
template <class L>
using scalar_t = typename layer_args<L>::scalar;

// True when L declares a member called `name` at all (any signature, static or not): the
// probe's own `name` becomes ambiguous with L's, so taking its address fails.
#define HYENA_CONTRACT_NAMES(name)                                        \
  struct probe_##name {                                                   \
    static void name();                                                   \
  };                                                                      \
  template <class L>                                                      \
  struct with_probe_##name : L, probe_##name {};                          \
  template <class L>                                                      \
  concept names_##name = !requires { &with_probe_##name<L>::name; };
HYENA_CONTRACT_NAMES(forward)
HYENA_CONTRACT_NAMES(backward)
HYENA_CONTRACT_NAMES(init)
HYENA_CONTRACT_NAMES(input_shape)
HYENA_CONTRACT_NAMES(output_shape)
#undef HYENA_CONTRACT_NAMES

template <class L>
concept has_types = requires {
  typename L::config;
  typename L::params;
  typename L::cache;
};

// The config is one type for every backend and scalar: the gradient check runs the layer in
// double on cpu_ref, the model converts between backends, and checkpoints store one config.
template <class L>
concept shared_config =
    std::is_same_v<typename L::config, typename layer_args<L>::template rebind<backend::cpu_ref, double>::config> &&
    std::is_same_v<typename L::config, typename layer_args<L>::template rebind<backend::cpu, float>::config>;

template <class L, class W = walker<scalar_t<L>, typename backend_t<L>::memory>>
concept params_visit = requires(typename L::params& p, W& w, const typename L::config& c) { p.visit(w, c); };

template <class L, class W = walker<scalar_t<L>, typename backend_t<L>::memory>>
concept cache_visit = requires(typename L::cache& k, W& w, const typename L::config& c, index_t n) {
  k.visit(w, c, n, n);
};

template <class L>
concept input_shape_ok = requires(const typename L::config& c, index_t n) {
  { L::input_shape(c, n, n) } -> std::convertible_to<shape>;
};
template <class L>
concept output_shape_ok = requires(const typename L::config& c, index_t n) {
  { L::output_shape(c, n, n) } -> std::convertible_to<shape>;
};

template <class L>
concept init_ok = requires(const typename L::config& c, typename L::params& p, rng& r) { L::init(c, p, r); };

template <class L, class B = backend_t<L>, class T = scalar_t<L>>
concept forward_ok = requires(typename B::context& ctx, const typename L::config& c, const typename L::params& p,
                              typename L::cache& k, view_of<B, const T> x, view_of<B, T> y) {
  L::forward(ctx, c, p, k, x, y);
};

template <class L, class B = backend_t<L>, class T = scalar_t<L>>
concept backward_ok = requires(typename B::context& ctx, const typename L::config& c, const typename L::params& p,
                               typename L::cache& k, view_of<B, const T> dy, view_of<B, T> dx,
                               typename L::params& g) { L::backward(ctx, c, p, k, dy, dx, g); };

// A mixer's config is built from the model's shape (and its own hparams, if it has any).
template <class L>
concept config_from_model = requires(const model_config& m, const hparams_t<L>& h) {
  { L::config::from(m, h) } -> std::convertible_to<typename L::config>;
} || requires(const model_config& m) {
  { L::config::from(m) } -> std::convertible_to<typename L::config>;
};

// What models/config_json.hpp calls to save and load a mixer's hyperparameters.
struct field_probe {
  template <class V>
  void operator()(const char*, V&) const {}
};
template <class H>
concept hparams_ok = std::default_initializable<H> && requires(H& h, const H& ch) {
  ch.validate();
  H::visit_fields(h, field_probe{});
  H::visit_fields(ch, field_probe{});
};

}  // namespace contract

// A layer of nn/layer.hpp's contract: a template over (backend, scalar) with a namespace-scope
// config, params and cache that visit their tensors, input/output shapes, init, forward and
// backward taking views of the layer's backend and scalar.
template <class L>
concept layer = contract::layer_args<L>::is_template && contract::has_types<L> && contract::shared_config<L> &&
                contract::params_visit<L> && contract::cache_visit<L> && contract::input_shape_ok<L> &&
                contract::output_shape_ok<L> && contract::init_ok<L> && contract::forward_ok<L> &&
                contract::backward_ok<L>;

// A token mixer: a layer whose config comes from the model (config::from(model_config) or
// config::from(model_config, hparams)) and whose hparams, if any, can be saved and validated.
// It maps (batch, seq, hidden) to the same shape (models::block checks that when it is sized).
template <class L>
concept mixer = layer<L> && contract::config_from_model<L> && contract::hparams_ok<hparams_t<L>>;

namespace contract {

// One failed requirement, worded for a mixer or for any other layer.
#define HYENA_CONTRACT_FAIL(msg)                  \
  static_assert(!Mixer, "hyena: the mixer " msg); \
  static_assert(Mixer, "hyena: the layer " msg)

// Stops at the first broken requirement, so a layer gets one message, not a cascade.
template <class L, bool Mixer>
consteval bool check() {
  if constexpr (!layer_args<L>::is_template) {
    HYENA_CONTRACT_FAIL("is not a template over (backend, scalar): write template <class B, class T> struct ...; see nn/layer.hpp");
  } else if constexpr (!requires { typename L::config; }) {
    HYENA_CONTRACT_FAIL("has no config type (using config = my_config;); see nn/layer.hpp");
  } else if constexpr (!requires { typename L::params; }) {
    HYENA_CONTRACT_FAIL("has no params struct (with visit(w, config)); see nn/layer.hpp");
  } else if constexpr (!requires { typename L::cache; }) {
    HYENA_CONTRACT_FAIL("has no cache struct (with visit(w, config, batch, seq)); see nn/layer.hpp");
  } else if constexpr (!shared_config<L>) {
    HYENA_CONTRACT_FAIL("declares its config inside the template: declare the struct at namespace scope, shared by every backend and scalar, and write using config = my_config; see nn/layer.hpp");
  } else if constexpr (!params_visit<L>) {
    HYENA_CONTRACT_FAIL("has no params::visit(w, config) taking any walker; see nn/layer.hpp");
  } else if constexpr (!cache_visit<L>) {
    HYENA_CONTRACT_FAIL("has no cache::visit(w, config, batch, seq) taking any walker; see nn/layer.hpp");
  } else if constexpr (!names_input_shape<L>) {
    HYENA_CONTRACT_FAIL("has no static input_shape(config, batch, seq) -> shape; see nn/layer.hpp");
  } else if constexpr (!input_shape_ok<L>) {
    HYENA_CONTRACT_FAIL("has an input_shape that is not static shape input_shape(const config&, index_t batch, index_t seq); see nn/layer.hpp");
  } else if constexpr (!names_output_shape<L>) {
    HYENA_CONTRACT_FAIL("has no static output_shape(config, batch, seq) -> shape; see nn/layer.hpp");
  } else if constexpr (!output_shape_ok<L>) {
    HYENA_CONTRACT_FAIL("has an output_shape that is not static shape output_shape(const config&, index_t batch, index_t seq); see nn/layer.hpp");
  } else if constexpr (!names_init<L>) {
    HYENA_CONTRACT_FAIL("has no init(config, params, rng); see nn/layer.hpp");
  } else if constexpr (!init_ok<L>) {
    HYENA_CONTRACT_FAIL("has an init that is not static void init(const config&, params&, rng&); see nn/layer.hpp");
  } else if constexpr (!names_forward<L>) {
    HYENA_CONTRACT_FAIL("has no forward(ctx, config, params, cache, x, y); see nn/layer.hpp");
  } else if constexpr (!forward_ok<L>) {
    HYENA_CONTRACT_FAIL("has a forward that is not static void forward(context&, const config&, const params&, cache&, ctview x, tview y); see nn/layer.hpp");
  } else if constexpr (!names_backward<L>) {
    HYENA_CONTRACT_FAIL("has no backward(ctx, config, params, cache, dy, dx, grads); see nn/layer.hpp");
  } else if constexpr (!backward_ok<L>) {
    HYENA_CONTRACT_FAIL("has a backward that is not static void backward(context&, const config&, const params&, cache&, ctview dy, tview dx, params& grads); see nn/layer.hpp");
  } else if constexpr (Mixer && !config_from_model<L>) {
    HYENA_CONTRACT_FAIL("config has no static from(const model_config&) (or from(const model_config&, const hparams&)); see nn/mixer.hpp");
  } else if constexpr (Mixer && !hparams_ok<hparams_t<L>>) {
    HYENA_CONTRACT_FAIL("hparams needs a default value, validate() const and static visit_fields(self, fn); see nn/mixer.hpp");
  }
  return true;  // the static_asserts above are the errors; the caller's own assert stays quiet
}

#undef HYENA_CONTRACT_FAIL

}  // namespace contract

// static_assert(check_layer<L>()): true for a layer, else one static_assert naming what is wrong.
template <class L>
consteval bool check_layer() {
  return contract::check<L, false>();
}

// static_assert(check_mixer<L>()): true for a mixer, else one static_assert naming what is wrong.
template <class L>
consteval bool check_mixer() {
  return contract::check<L, true>();
}

}  // namespace hyena::nn
