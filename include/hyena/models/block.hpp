// models/block.hpp: one transformer block, templated on its mixer, MLP and norm.
//
//   parallel residual (GPT-NeoX):       y = x + mixer(norm1(x)) + mlp(norm2(x))
//   sequential pre-norm (Llama, NeoX    h = x + mixer(norm1(x)); y = h + mlp(norm2(h))
//   with use_parallel_residual=false):
//
// model_config.parallel_residual picks the form. The block's config is the model's shape plus
// the mixer's own hyperparameters (lm_config). Swapping the mixer (attention ->
// Hyena) is changing one template argument.
#pragma once
#include <functional>

#include "../nn/concepts.hpp"
#include "../nn/layer.hpp"
#include "config.hpp"

namespace hyena::models {

template <class B, class T, template <class, class> class Mixer, template <class, class> class Mlp,
          template <class, class> class Norm>
struct block {
  // The parts' contracts, checked first so a broken part fails here with one line that says
  // what it lacks (nn/concepts.hpp), not deep inside a member function.
  static_assert(nn::check_mixer<Mixer<B, T>>());
  static_assert(nn::check_layer<Mlp<B, T>>());
  static_assert(nn::check_layer<Norm<B, T>>());

  using backend = B;
  using scalar = T;
  using mixer = Mixer<B, T>;
  using mlp = Mlp<B, T>;
  using norm = Norm<B, T>;
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using mixer_hparams = nn::hparams_t<mixer>;
  using config = lm_config<mixer_hparams>;  // the model's shape plus the mixer's hyperparameters
  // Lets a model type be rebuilt with another mixer, backend or scalar type.
  template <class B2, class T2, template <class, class> class Mixer2>
  using rebind = block<B2, T2, Mixer2, Mlp, Norm>;
  template <class B2, class T2>
  using on_backend = block<B2, T2, Mixer, Mlp, Norm>;

  struct params {
    typename norm::params norm1, norm2;
    typename mixer::params mix;
    typename mlp::params ffn;
    template <class W>
    void visit(W&& w, const config& c) {
      auto n1 = w.child("norm1"), mx = w.child("mixer"), n2 = w.child("norm2"), f = w.child("mlp");
      norm1.visit(n1, norm_config(c));
      mix.visit(mx, mixer_config(c));
      norm2.visit(n2, norm_config(c));
      ffn.visit(f, mlp_config(c));
    }
  };

  struct cache {
    typename norm::cache norm1, norm2;
    typename mixer::cache mix;
    typename mlp::cache ffn;
    ctview x;                      // block input (by reference)
    tview norm1_out, mixer_out;    // (batch, seq, hidden)
    tview mid;                     // sequential form: x + mixer_out
    tview norm2_out, mlp_out;
    template <class W>
    void visit(W&& w, const config& c, index_t batch, index_t seq) {
      shape s{batch, seq, c.hidden};
      auto n1 = w.child("norm1"), mx = w.child("mixer"), n2 = w.child("norm2"), f = w.child("mlp");
      norm1.visit(n1, norm_config(c), batch, seq);
      mix.visit(mx, mixer_config(c), batch, seq);
      norm2.visit(n2, norm_config(c), batch, seq);
      ffn.visit(f, mlp_config(c), batch, seq);
      w("norm1_out", norm1_out, s);
      w("mixer_out", mixer_out, s);
      if (!c.parallel_residual) w("mid", mid, s);
      w("norm2_out", norm2_out, s);
      w("mlp_out", mlp_out, s);
    }
  };

  static typename norm::config norm_config(const config& c) { return norm::config::from(c); }
  static typename mixer::config mixer_config(const config& c) { return nn::layer_config<mixer>(c, c.mixer); }
  static typename mlp::config mlp_config(const config& c) { return mlp::config::from(c); }

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.hidden}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.hidden}; }

  static void init(const config& c, params& p, rng& r) {
    norm::init(norm_config(c), p.norm1, r);
    mixer::init(mixer_config(c), p.mix, r);
    norm::init(norm_config(c), p.norm2, r);
    mlp::init(mlp_config(c), p.ffn, r);
  }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y) {
    forward_with(ctx, c, p, k, x, y, [&](ctview in, tview out) {
      mixer::forward(ctx, mixer_config(c), p.mix, k.mix, in, out);
    });
  }

  // The block with `mix(in, out)` in the mixer's place (the decoder passes the mixer's
  // decode step), so the residual wiring is written once.
  template <class MixFn>
  static void forward_with(context& ctx, const config& c, const params& p, cache& k, ctview x, tview y, MixFn&& mix) {
    HYENA_CHECK(x.shape == y.shape && x.rank() == 3 && x.size(2) == c.hidden, "block: input ", x.shape,
                " and output ", y.shape, " must both be (batch, seq, ", c.hidden, ")");
    const index_t n = x.numel();
    k.x = x;
    norm::forward(ctx, norm_config(c), p.norm1, k.norm1, x, k.norm1_out);
    mix(ctview(k.norm1_out), k.mixer_out);
    ctview mlp_in = x;
    if (!c.parallel_residual) {
      B::add(ctx, n, x.data, k.mixer_out.data, k.mid.data);
      mlp_in = k.mid;
    }
    norm::forward(ctx, norm_config(c), p.norm2, k.norm2, mlp_in, k.norm2_out);
    mlp::forward(ctx, mlp_config(c), p.ffn, k.ffn, k.norm2_out, k.mlp_out);
    if (c.parallel_residual) {
      B::add(ctx, n, x.data, k.mixer_out.data, y.data);
      B::axpy(ctx, n, T(1), k.mlp_out.data, y.data);
    } else {
      B::add(ctx, n, k.mid.data, k.mlp_out.data, y.data);
    }
  }

  // dy: gradient w.r.t. the block output; dx (assigned) w.r.t. its input. `mixer_hook`, if set,
  // may add an extra gradient into d(mixer output) before it flows into the mixer.
  static void backward(context& ctx, const config& c, const params& p, cache& k, ctview dy, tview dx, params& g,
                       const std::function<void(tview)>& mixer_hook = {}) {
    const index_t n = dy.numel();
    // Three (batch, seq, hidden) buffers of scratch, shared by every block of this type
    // (nn/layer.hpp's context_scratch).
    T* scratch = nn::context_scratch<block, B, T>(ctx, 3 * n);
    const tview d_a(scratch, dy.shape), d_b(scratch + n, dy.shape), d_mixer_out(scratch + 2 * n, dy.shape);
    // MLP branch: d(mlp_out) = dy.
    mlp::backward(ctx, mlp_config(c), p.ffn, k.ffn, dy, d_a, g.ffn);
    norm::backward(ctx, norm_config(c), p.norm2, k.norm2, d_a, d_b, g.norm2);  // d_b: d(mlp input)
    // d(mixer_out) = dy, plus the MLP branch's gradient in the sequential form.
    if (c.parallel_residual) B::copy(ctx, n, dy.data, d_mixer_out.data);
    else B::add(ctx, n, dy.data, d_b.data, d_mixer_out.data);
    if (mixer_hook) mixer_hook(d_mixer_out);
    mixer::backward(ctx, mixer_config(c), p.mix, k.mix, d_mixer_out, d_a, g.mix);
    // dx = dy + MLP branch + norm1 branch (the same sum in both forms: in the sequential
    // form the MLP branch reaches x through the residual h = x + mixer_out).
    B::add(ctx, n, dy.data, d_b.data, dx.data);
    norm::backward(ctx, norm_config(c), p.norm1, k.norm1, d_a, d_b, g.norm1);
    B::axpy(ctx, n, T(1), d_b.data, dx.data);
  }
};

}  // namespace hyena::models
