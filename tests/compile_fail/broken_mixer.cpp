// broken_mixer: a per-channel scaling mixer (y = w * x) with one deliberate contract mistake,
// picked by HYENA_MISTAKE, swapped into a Llama model the way a user would. Built by the
// compile_fail.* tests (tests/CMakeLists.txt), which pass only when the build fails with the
// static_assert of nn/concepts.hpp that names the mistake.
#include <hyena/hyena.hpp>

#include <vector>

namespace user {
using namespace hyena;

#define NO_BACKWARD 1
#define WRONG_BACKWARD 2
#define NESTED_CONFIG 3
#define NO_SHAPES 4

struct scale_config {
  index_t hidden = 0;
  static scale_config from(const model_config& m) { return {m.hidden}; }
};

template <class B, class T>
struct scale_mixer {
#if HYENA_MISTAKE == NESTED_CONFIG
  // Mistake: a config per (backend, scalar) instead of one shared struct.
  struct config {
    index_t hidden = 0;
    static config from(const model_config& m) { return {m.hidden}; }
  };
#else
  using config = scale_config;
#endif
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;

  struct params {
    tview w;  // (hidden)
    template <class W>
    void visit(W&& walk, const config& c) { walk("w", w, {c.hidden}); }
  };
  struct cache {
    ctview x;
    template <class W>
    void visit(W&&, const config&, index_t, index_t) {}
  };
#if HYENA_MISTAKE != NO_SHAPES
  static shape input_shape(const config& c, index_t b, index_t s) { return {b, s, c.hidden}; }
  static shape output_shape(const config& c, index_t b, index_t s) { return {b, s, c.hidden}; }
#endif
  static void init(const config&, params& p, rng&) { fill_value(p.w, T(1)); }
  static void forward(context&, const config& c, const params& p, cache& k, ctview x, tview y) {
    k.x = x;
    for (index_t i = 0; i < x.numel(); ++i) y.data[i] = p.w.data[i % c.hidden] * x.data[i];
  }
#if HYENA_MISTAKE == WRONG_BACKWARD
  // Mistake: no parameter gradients argument.
  static void backward(context&, const config& c, const params& p, cache&, ctview dy, tview dx) {
    for (index_t i = 0; i < dy.numel(); ++i) dx.data[i] = p.w.data[i % c.hidden] * dy.data[i];
  }
#elif HYENA_MISTAKE != NO_BACKWARD
  static void backward(context&, const config& c, const params& p, cache& k, ctview dy, tview dx, params& g) {
    for (index_t i = 0; i < dy.numel(); ++i) {
      g.w.data[i % c.hidden] += k.x.data[i] * dy.data[i];
      if (!dx.empty()) dx.data[i] = p.w.data[i % c.hidden] * dy.data[i];
    }
  }
#endif
};

}  // namespace user

using Model = hyena::models::with_mixer<hyena::models::llama<hyena::backend::cpu>, user::scale_mixer>;

int main() {
  using namespace hyena;
  Model m(models::llama_config(64, 16, 1, 2, 2, 32, 16));
  rng r(0);
  m.init(r);
  std::vector<std::int32_t> tokens(256, 1);
  train::trainer_options o;
  o.batch = 1, o.seq = 8, o.steps = 1;
  backend::host_context ctx;
  train::trainer<Model>(m, o).run(ctx, std::span<const std::int32_t>(tokens));
}
