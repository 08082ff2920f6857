// nn/hyena.hpp: the Hyena operator (Poli et al. 2023; safari's HyenaOperator), a mixer that
// maps (batch, L, D) -> (batch, L, D) with L <= max_seq:
//
//   p        = in_proj(u)                     D -> (N+1) D, with bias
//   s        = short_conv(p)                  causal depthwise, kernel K, on all (N+1) D channels
//   x_0 .. x_{N-1}, v = the D-wide channel blocks of s (v is the last)
//   h        = filter(L)                      ((N-1) D, L); filter i = rows (i-1) D .. i D - 1
//   for i = N-1 down to 1:   w_i = x_i * v;   v = causal_conv(w_i, h_i) + bias_i * w_i
//   y        = out_proj(x_0 * v)              D -> D, with bias
//
// Rank R > 1 (order 2 only; our extension for distillation, issue 10): R gate pairs share v,
//   x0_0 .. x0_{R-1}, x1_0 .. x1_{R-1}, v = the D-wide blocks of s   (in_proj: D -> (2R+1) D)
//   y = out_proj( sum_r x0_r * (causal_conv(x1_r * v, h_r) + bias_r * (x1_r * v)) )
// Each branch is an order-2 operator; their sum is a Toeplitz-weighted linear attention whose
// per-channel score x0_r(t) x1_r(s) has rank R instead of 1 (with rank 1 it is the order-2
// operator above, block for block). Writing a softmax score as a sum of R feature products is
// how linear-attention conversions approximate it (LoLCATs, Hedgehog); the filter h_r gives each
// product its own decay over the lag.
//
// The long convolutions are causal, so output t depends on inputs 0..t only.
//
// Layout: in_proj runs as one product per D-wide block of its output (N+1 blocks, or 2R+1), so
// p and s are stored blocked, (blocks, batch, seq, D): every gate and v is then a contiguous
// (batch, seq, D) tensor the elementwise and convolution ops use in place, with no strided copies.
#pragma once
#include "decode_positions.hpp"
#include "implicit_filter.hpp"
#include "linear.hpp"
#include "mixer.hpp"
#include "short_conv.hpp"

namespace hyena::nn {

// The operator's own hyperparameters (its sizes come from the model): what a user picks
// for a student, saved in its checkpoints (nn/mixer.hpp).
struct hyena_hparams {
  index_t order = 2;          // N: N-1 long convolutions
  index_t filter_order = 64;  // width of the implicit filter FFN
  index_t emb_dim = 33;       // positional features of the filter: 2K+1 for K bands
  index_t filter_layers = 2;  // inner sin layers of the filter FFN
  index_t short_filter = 3;   // kernel of the short depthwise conv
  double sin_freq = 1.0;      // initial sin frequency of the filter FFN
  index_t rank = 1;           // R: gate pairs of an order-2 operator (see the header)

  template <class Self, class Fn>
  static void visit_fields(Self& h, Fn&& fn) {
    fn("order", h.order);
    fn("filter_order", h.filter_order);
    fn("emb_dim", h.emb_dim);
    fn("filter_layers", h.filter_layers);
    fn("short_filter", h.short_filter);
    fn("sin_freq", h.sin_freq);
    fn("rank", h.rank);
  }
  void validate() const {
    HYENA_CHECK(order >= 2, "hyena: order must be >= 2, got ", order);
    HYENA_CHECK(rank >= 1 && (rank == 1 || order == 2), "hyena: rank must be >= 1, and rank > 1 needs ",
                "order 2; got rank ", rank, " at order ", order);
    HYENA_CHECK(emb_dim >= 3 && emb_dim % 2 == 1, "hyena: emb_dim must be odd and >= 3, got ", emb_dim);
    HYENA_CHECK(filter_order > 0 && filter_layers >= 0 && short_filter > 0, "hyena: filter_order (", filter_order,
                ") and short_filter (", short_filter, ") must be positive and filter_layers (", filter_layers,
                ") >= 0");
  }
};

struct hyena_config {
  index_t hidden = 0;         // D
  index_t order = 2;          // N: N-1 long convolutions
  index_t filter_order = 64;  // width of the implicit filter FFN
  index_t emb_dim = 33;       // positional features of the filter
  index_t filter_layers = 2;  // inner sin layers of the filter FFN
  index_t short_filter = 3;   // kernel of the short depthwise conv
  index_t max_seq = 0;        // longest input (the filter table's rows)
  double sin_freq = 1.0;      // initial sin frequency of the filter FFN
  double init_std = 0.02;     // in_proj / out_proj weights
  index_t rank = 1;           // R: gate pairs of an order-2 operator

  static hyena_config from(const model_config& m, const hyena_hparams& h = {}) {
    return {.hidden = m.hidden, .order = h.order, .filter_order = h.filter_order, .emb_dim = h.emb_dim,
            .filter_layers = h.filter_layers, .short_filter = h.short_filter, .max_seq = m.max_seq,
            .sin_freq = h.sin_freq, .rank = h.rank};
  }
  index_t convs() const { return order - 1 + rank - 1; }    // long convolutions: N - 1, or R at order 2
  index_t blocks() const { return convs() + rank + 1; }     // D-wide blocks of in_proj: N + 1, or 2R + 1
  index_t width() const { return blocks() * hidden; }      // channels after in_proj
  linear_config in_proj() const { return {hidden, width(), true, init_std}; }
  linear_config out_proj() const { return {hidden, hidden, true, init_std}; }
  short_conv_config short_conv() const { return {width(), short_filter}; }
  implicit_filter_config filter() const {
    return {.channels = convs() * hidden, .emb_dim = emb_dim, .width = filter_order, .inner = filter_layers,
            .max_seq = max_seq, .sin_freq = sin_freq};
  }
  void validate() const {
    HYENA_CHECK(order >= 2, "hyena: order must be >= 2, got ", order);
    HYENA_CHECK(rank >= 1 && (rank == 1 || order == 2), "hyena: rank must be >= 1, and rank > 1 needs ",
                "order 2; got rank ", rank, " at order ", order);
    HYENA_CHECK(hidden > 0 && short_filter > 0 && max_seq > 0, "hyena: hidden (", hidden, "), short_filter (",
                short_filter, ") and max_seq (", max_seq, ") must be positive");
    filter().validate();
  }
};

template <class B, class T>
struct hyena_operator {
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using config = hyena_config;
  using hparams = hyena_hparams;
  using lin = linear<B, T>;
  using conv = short_conv<B, T>;
  using filt = implicit_filter<B, T>;

  struct params {
    typename lin::params in_proj;
    typename conv::params short_filter;
    typename filt::params filter;
    tview bias;  // (convs, D): the per-channel skip term D_i of each long convolution
    typename lin::params out_proj;
    template <class W>
    void visit(W&& w, const config& c) {
      in_proj.visit(w.child("in_proj"), c.in_proj());
      short_filter.visit(w.child("short_conv"), c.short_conv());
      filter.visit(w.child("filter"), c.filter());
      w("bias", bias, {c.convs(), c.hidden});
      out_proj.visit(w.child("out_proj"), c.out_proj());
    }
  };

  // Sizes below: nb = c.blocks() (N + 1, or 2R + 1) and C = c.convs() (N - 1, or R).
  struct cache {
    typename lin::cache in_proj, out_proj;  // views of their inputs
    typename filt::cache filter;
    tview proj;    // (nb, batch, seq, D): in_proj output, blocked
    tview blocks;  // (nb, batch, seq, D): the short conv's output (x_0 .. x_{N-1}, v, or x0_*, x1_*, v)
    tview h;       // (C D, seq)
    tview w, v;    // (C, batch, seq, D): each long convolution's input w_i and output v_i
    tview gated;   // (batch, seq, D): the out_proj input
    template <class W>
    void visit(W&& wk, const config& c, index_t batch, index_t seq) {
      const index_t nb = c.blocks(), C = c.convs(), D = c.hidden;
      filter.visit(wk.child("filter"), c.filter(), batch, seq);
      wk("proj", proj, {nb, batch, seq, D});
      wk("blocks", blocks, {nb, batch, seq, D});
      wk("h", h, {C * D, seq});
      wk("w", w, {C, batch, seq, D});
      wk("v", v, {C, batch, seq, D});
      wk("gated", gated, {batch, seq, D});
    }
  };

  static shape input_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.hidden}; }
  static shape output_shape(const config& c, index_t batch, index_t seq) { return {batch, seq, c.hidden}; }

  // Projections normal(init_std) with zero bias, the short conv as PyTorch's Conv1d, the
  // filter as in implicit_filter.hpp, and the skip term standard normal (safari's randn).
  static void init(const config& c, params& p, rng& r) {
    c.validate();
    lin::init(c.in_proj(), p.in_proj, r);
    conv::init(c.short_conv(), p.short_filter, r);
    filt::init(c.filter(), p.filter, r);
    fill_normal(p.bias, r, 1.0);
    lin::init(c.out_proj(), p.out_proj, r);
  }

  // The checks forward and infer share: a valid config, u contiguous (batch, seq, hidden) with
  // 1 <= seq <= max_seq, and y of u's shape.
  static void check_call(const config& c, ctview u, tview y) {
    c.validate();
    HYENA_CHECK(u.rank() == 3 && u.size(2) == c.hidden && u.contiguous(), "hyena: input must be contiguous (batch, seq, ",
                c.hidden, "), got ", u.shape);
    check_same_shape(u, y, "hyena: output vs input");
    HYENA_CHECK(u.size(1) >= 1 && u.size(1) <= c.max_seq, "hyena: sequence length ", u.size(1),
                " not in [1, max_seq = ", c.max_seq, "]");
  }

  // Block j of the projections: proj = u W_j^T + b_j (W_j: rows jD.. of in_proj), then
  // out = short_conv_j(proj). Every pointer is (batch, seq, D).
  static void project_block(context& ctx, const config& c, const params& p, ctview u, index_t j, T* proj, T* out) {
    const index_t batch = u.size(0), seq = u.size(1), D = c.hidden, rows = batch * seq, K = c.short_filter;
    B::gemm_bias(ctx, false, true, rows, D, D, u.data, D, p.in_proj.weight.data + j * D * D, D,
                 p.in_proj.bias.data + j * D, proj, D);
    B::short_conv_forward(ctx, batch, seq, D, K, static_cast<const T*>(proj), p.short_filter.weight.data + j * D * K,
                          p.short_filter.bias.data + j * D, out);
  }

  // Long convolution i: w = x * v_in, out = h_i conv w + D_i w (w may be x: in place). Every
  // pointer but h (the (C D, seq) filters) is (batch, seq, D).
  static void gated_long_conv(context& ctx, const config& c, const params& p, index_t batch, index_t seq, const T* h,
                              index_t i, const T* x, const T* v_in, T* w, T* out) {
    const index_t D = c.hidden, rows = batch * seq;
    B::mul(ctx, rows * D, x, v_in, w);
    B::causal_conv_forward(ctx, batch, seq, D, static_cast<const T*>(w), h + i * D * seq, seq, out);
    B::scale_add(ctx, rows, D, p.bias.data + i * D, static_cast<const T*>(w), out);
  }

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview u, tview y) {
    check_call(c, u, y);
    const index_t batch = u.size(0), seq = u.size(1), N = c.order, R = c.rank, D = c.hidden;
    const index_t nb = c.blocks(), C = c.convs(), n = batch * seq * D;
    tview proj = leading(k.proj, {nb, batch, seq, D}, "hyena");
    tview blocks = leading(k.blocks, {nb, batch, seq, D}, "hyena"), h = leading(k.h, {C * D, seq}, "hyena");
    tview w = leading(k.w, {C, batch, seq, D}, "hyena"), v = leading(k.v, {C, batch, seq, D}, "hyena");
    tview gated = leading(k.gated, {batch, seq, D}, "hyena");
    auto block = [&](const tview& t, index_t j) { return t.data + j * n; };

    // The projections (kept, with the short convs' outputs, for the backward).
    for (index_t j = 0; j < nb; ++j) project_block(ctx, c, p, u, j, block(proj, j), block(blocks, j));
    k.in_proj.x = u;
    filt::forward(ctx, c.filter(), p.filter, k.filter, seq, h);
    // Long convolution i: w_i = x * v_in, v_i = h_i conv w_i + D_i w_i.
    auto long_conv = [&](index_t i, const T* x, const T* v_in) {
      gated_long_conv(ctx, c, p, batch, seq, h.data, i, x, v_in, block(w, i), block(v, i));
    };

    if (R == 1) {  // the recurrence, from x_{N-1} down to x_1; then gated = x_0 * v_1
      const T* cur = block(blocks, N);  // v
      for (index_t i = N - 1; i >= 1; --i) {
        long_conv(i - 1, block(blocks, i), cur);
        cur = block(v, i - 1);
      }
      B::mul(ctx, n, block(blocks, 0), cur, gated.data);
    } else {  // gated = sum_r x0_r * v_r, with v_r the long convolution of w_r = x1_r * v
      T* product = scratch(ctx, scratch_size(c, batch, seq));
      for (index_t r = 0; r < R; ++r) {
        long_conv(r, block(blocks, R + r), block(blocks, 2 * R));
        B::mul(ctx, n, block(blocks, r), block(v, r), r == 0 ? gated.data : product);
        if (r > 0) B::add(ctx, n, static_cast<const T*>(gated.data), static_cast<const T*>(product), gated.data);
      }
    }
    lin::forward(ctx, c.out_proj(), p.out_proj, k.out_proj, gated, y);
  }

  // ---- Forward without a backward to follow (inference) ------------------------------------
  // The same y as forward, bit for bit (the same ops on the same values), but each buffer is
  // reused once its value is consumed: v first, then each x_i is gated into w in place and
  // convolved back over the old v, then x_0 gates the result. Three (batch, seq, D) buffers at
  // rank 1 (five at rank > 1) where forward's cache keeps 3(N+1) + 2(N-1) + 1 of them for the
  // backward, and the filter as implicit_filter::infer. At L = 1M, D = 128 (bench_operator
  // --forward-only): docs/results.md section 5.
  struct infer_cache {
    typename filt::infer_cache filter;
    tview h;         // (C D, seq)
    tview proj;      // (batch, seq, D): one in_proj block before its short conv
    tview a, b;      // (batch, seq, D): working buffers
    tview v, gated;  // (batch, seq, D), rank > 1 only (else empty): the shared v and the branches' sum
    template <class W>
    void visit(W&& wk, const config& c, index_t batch, index_t seq) {
      const index_t D = c.hidden, rank_batch = c.rank > 1 ? batch : 0;
      filter.visit(wk.child("filter"), c.filter(), batch, seq);
      wk("h", h, {c.convs() * D, seq});
      wk("proj", proj, {batch, seq, D});
      wk("a", a, {batch, seq, D});
      wk("b", b, {batch, seq, D});
      wk("v", v, {rank_batch, seq, D});
      wk("gated", gated, {rank_batch, seq, D});
    }
  };

  static void infer(context& ctx, const config& c, const params& p, infer_cache& k, ctview u, tview y) {
    check_call(c, u, y);
    const index_t batch = u.size(0), seq = u.size(1), N = c.order, R = c.rank, D = c.hidden, C = c.convs();
    const index_t n = batch * seq * D;
    const shape s{batch, seq, D};
    tview proj = leading(k.proj, s, "hyena"), a = leading(k.a, s, "hyena"), b = leading(k.b, s, "hyena");
    tview h = leading(k.h, {C * D, seq}, "hyena");
    // Block j of the short conv's output into `out`, one in_proj block at a time through proj.
    auto block = [&](index_t j, const tview& out) { project_block(ctx, c, p, u, j, proj.data, out.data); };
    filt::infer(ctx, c.filter(), p.filter, k.filter, seq, h);
    // Long convolution i in place over x (w = x * v_in), into out.
    auto long_conv = [&](index_t i, const tview& x, const T* v_in, const tview& out) {
      gated_long_conv(ctx, c, p, batch, seq, h.data, i, x.data, v_in, x.data, out.data);
    };
    typename lin::cache unused;  // a linear's cache only records its input, for a backward
    if (R == 1) {  // a holds v, then each v_i (written over the v it was computed from); b each x_i
      block(N, a);
      for (index_t i = N - 1; i >= 1; --i) {
        block(i, b);
        long_conv(i - 1, b, a.data, a);
      }
      block(0, b);
      B::mul(ctx, n, static_cast<const T*>(b.data), static_cast<const T*>(a.data), b.data);
      lin::forward(ctx, c.out_proj(), p.out_proj, unused, b, y);
      return;
    }
    tview v = leading(k.v, s, "hyena"), gated = leading(k.gated, s, "hyena");
    block(2 * R, v);
    for (index_t r = 0; r < R; ++r) {  // gated += x0_r * v_r, with v_r from w_r = x1_r * v
      block(R + r, a);
      long_conv(r, a, v.data, b);
      block(r, a);
      B::mul(ctx, n, static_cast<const T*>(a.data), static_cast<const T*>(b.data), r == 0 ? gated.data : a.data);
      if (r > 0) B::add(ctx, n, static_cast<const T*>(gated.data), static_cast<const T*>(a.data), gated.data);
    }
    lin::forward(ctx, c.out_proj(), p.out_proj, unused, gated, y);
  }

  static void backward(context& ctx, const config& c, const params& p, const cache& k, ctview dy, tview du,
                       params& g) {
    HYENA_CHECK(dy.rank() == 3 && dy.size(2) == c.hidden && dy.contiguous(), "hyena: output gradient must be ",
                "contiguous (batch, seq, ", c.hidden, "), got ", dy.shape);
    const index_t batch = dy.size(0), seq = dy.size(1), N = c.order, R = c.rank, D = c.hidden;
    const index_t nb = c.blocks(), C = c.convs();
    HYENA_CHECK(k.in_proj.x.shape == dy.shape, "hyena: output gradient ", dy.shape, " does not match the forward input ",
                k.in_proj.x.shape);
    if (!du.empty()) check_same_shape(du, dy, "hyena: input gradient vs output gradient");
    const index_t rows = batch * seq, n = rows * D;
    tview blocks = leading(k.blocks, {nb, batch, seq, D}, "hyena"), h = leading(k.h, {C * D, seq}, "hyena");
    tview w = leading(k.w, {C, batch, seq, D}, "hyena"), v = leading(k.v, {C, batch, seq, D}, "hyena");
    // Scratch that backward alone needs lives in the context, shared by every layer, not in
    // each layer's cache (layout in scratch_size). v's gradient d_v ends up as the last block
    // of d_blocks, so it is kept there throughout.
    T* ws = scratch(ctx, scratch_size(c, batch, seq));
    tview d_blocks(ws, {nb, batch, seq, D});
    tview d_v(d_blocks.data + (nb - 1) * n, {batch, seq, D}), d_w(ws + (nb + 1) * n, {batch, seq, D});
    tview d_gated(ws + (nb + 2) * n, {batch, seq, D}), d_h(ws + (nb + 3) * n, {C * D, seq});
    T* d_out = ws + (nb + 3) * n + C * D * seq;  // rank > 1: one branch's d v_r
    auto block = [&](const tview& t, index_t j) { return t.data + j * n; };
    // Back through long convolution i (see forward's long_conv) from its output gradient
    // dv_i: the filter, skip-term and x gradients, and v_in's gradient into dv_in (assigned;
    // it may be dv_i itself, which is read before).
    auto long_conv_backward = [&](index_t i, const T* x, const T* v_in, const T* dv_i, T* d_x, T* dv_in) {
      const T* wi = block(w, i);
      B::causal_conv_backward(ctx, batch, seq, D, wi, h.data + i * D * seq, seq, dv_i, d_w.data,
                              d_h.data + i * D * seq);
      B::scale_add(ctx, rows, D, p.bias.data + i * D, dv_i, d_w.data);
      B::scale_grad(ctx, rows, D, wi, dv_i, g.bias.data + i * D);
      B::mul(ctx, n, static_cast<const T*>(d_w.data), v_in, d_x);
      B::mul(ctx, n, static_cast<const T*>(d_w.data), x, dv_in);
    };

    lin::backward(ctx, c.out_proj(), p.out_proj, k.out_proj, dy, d_gated, g.out_proj);
    B::fill(ctx, d_h.numel(), T(0), d_h.data);
    const T* dg = d_gated.data;
    if (R == 1) {
      // gated = x_0 * v_1; then undo the recurrence from its last step (i = 1) to its first.
      B::mul(ctx, n, dg, block(v, 0), block(d_blocks, 0));
      B::mul(ctx, n, dg, block(blocks, 0), d_v.data);
      for (index_t i = 1; i <= N - 1; ++i) {
        const T* next = i + 1 <= N - 1 ? block(v, i) : block(blocks, N);  // v_{i+1}, the conv's gate partner
        long_conv_backward(i - 1, block(blocks, i), next, d_v.data, block(d_blocks, i), d_v.data);
      }
    } else {
      // gated = sum_r x0_r * v_r; d_v sums the branches' contributions.
      for (index_t r = 0; r < R; ++r) {
        B::mul(ctx, n, dg, block(v, r), block(d_blocks, r));
        B::mul(ctx, n, dg, block(blocks, r), d_out);
        long_conv_backward(r, block(blocks, R + r), block(blocks, 2 * R), d_out, block(d_blocks, R + r),
                           r == 0 ? d_v.data : d_out);
        if (r > 0) B::add(ctx, n, static_cast<const T*>(d_v.data), static_cast<const T*>(d_out), d_v.data);
      }
    }
    backward_inputs(ctx, c, p, k, d_blocks, d_h, du, g);
  }

  // The lower half of backward, from gradients w.r.t. the short conv's outputs d_blocks
  // (nb, batch, seq, D, in the order of cache::blocks, assigned by the caller) and w.r.t. the
  // filters d_h (C D, seq): through the filter, the short conv and in_proj to the parameters
  // (+=) and to the input du (assigned; skipped when empty). An objective on the operator's
  // internals (train/operator_alignment.hpp) enters here.
  static void backward_inputs(context& ctx, const config& c, const params& p, const cache& k, ctview d_blocks,
                              ctview d_h, tview du, params& g) {
    const index_t nb = c.blocks(), C = c.convs(), D = c.hidden, batch = k.in_proj.x.size(0),
                  seq = k.in_proj.x.size(1);
    const index_t rows = batch * seq, n = rows * D, K = c.short_filter;
    HYENA_CHECK(d_blocks.contiguous() && d_blocks.numel() == nb * n, "hyena: block gradients must be (", nb, ", ",
                batch, ", ", seq, ", ", D, "), got ", d_blocks.shape);
    HYENA_CHECK(d_h.contiguous() && d_h.numel() == C * D * seq, "hyena: filter gradient must be (", C * D, ", ", seq,
                "), got ", d_h.shape);
    if (!du.empty()) check_same_shape(du, k.in_proj.x, "hyena: input gradient vs input");
    tview proj = leading(k.proj, {nb, batch, seq, D}, "hyena");
    filt::backward(ctx, c.filter(), p.filter, k.filter, d_h, g.filter);
    // The in_proj output's gradient, one block at a time, in the context's scratch.
    T* d_proj = scratch(ctx, scratch_size(c, batch, seq)) + nb * n;
    // Block by block: through the short conv, then in_proj (du sums the blocks' products).
    const T* u = k.in_proj.x.data;
    for (index_t j = 0; j < nb; ++j) {
      B::short_conv_backward(ctx, batch, seq, D, K, static_cast<const T*>(proj.data + j * n),
                             p.short_filter.weight.data + j * D * K, d_blocks.data + j * n, d_proj,
                             g.short_filter.weight.data + j * D * K, g.short_filter.bias.data + j * D);
      if (!du.empty())
        B::gemm(ctx, false, false, rows, D, D, T(1), static_cast<const T*>(d_proj), D,
                p.in_proj.weight.data + j * D * D, D, j == 0 ? T(0) : T(1), du.data, D);
      B::gemm(ctx, true, false, D, D, rows, T(1), static_cast<const T*>(d_proj), D, u, D, T(1),
              g.in_proj.weight.data + j * D * D, D);
      B::bias_grad(ctx, rows, D, static_cast<const T*>(d_proj), g.in_proj.bias.data + j * D);
    }
  }

  // ---- Incremental decoding (models/decoder.hpp) ---------------------------------------
  // The state of `rows` sequences: the short conv's last `short_filter` inputs (a ring, slot
  // t % K), and per long convolution i either (exact) the history of its inputs w_i and the
  // filter h_i, each new output the O(t) dot product of the two, or (modes > 0, Laughing
  // Hyena's modal form) a diagonal recurrence per channel: s <- lambda s + w, y = Re(R . s),
  // O(modes) per token whatever the position, with poles and residues set by the decoder
  // (nn/hyena_modal.hpp fits them to the filters). Sizes: nb blocks, C convolutions.
  struct decode_state {
    index_t modes = 0;
    tview ring;              // (rows, K, nb D)
    tview hist;              // exact: (C, rows, max_len, D)
    tview h;                 // exact: (C D, max_len), the filters
    tview poles, residues;   // modal: (C D, modes, 2) as (re, im)
    tview state;             // modal: (C, rows, D, modes * 2), (re, im) pairs
    tview p, s;              // one step's (rows, 1, nb D): in_proj and short conv outputs
    tview w, v, product;     // (rows, D): a convolution's input and output, a branch's x0_r * v_r
    tview gated;             // (rows, 1, D)
    typename lin::cache in_proj, out_proj;
    template <class W>
    void visit(W& wk, const config& c, index_t rows, index_t max_len, index_t n_modes) {
      const index_t nb = c.blocks(), C = c.convs(), D = c.hidden;
      modes = n_modes;
      wk("ring", ring, {rows, c.short_filter, nb * D});
      if (n_modes == 0) {
        wk("hist", hist, {C, rows, max_len, D});
        wk("h", h, {C * D, max_len});
      } else {
        wk("poles", poles, {C * D, n_modes, 2});
        wk("residues", residues, {C * D, n_modes, 2});
        wk("state", state, {C, rows, D, n_modes * 2});
      }
      wk("p", p, {rows, 1, nb * D});
      wk("s", s, {rows, 1, nb * D});
      wk("w", w, {rows, D});
      wk("v", v, {rows, D});
      wk("product", product, {rows, D});
      wk("gated", gated, {rows, 1, D});
    }
  };

  // Once per decoder (exact form): the filters for every position the state can hold.
  static void decode_setup(context& ctx, const config& c, const params& p, decode_state& s) {
    if (s.modes > 0) return;
    const index_t len = s.h.size(1);
    HYENA_CHECK(len <= c.max_seq, "hyena decode: ", len, " positions exceed the filter's max_seq ", c.max_seq);
    typename filt::cache k;
    arena<T, typename B::memory> a;
    a.bind(k, c.filter(), index_t(1), len);
    filt::forward(ctx, c.filter(), p.filter, k, len, s.h);
  }

  // After a forward over (rows, len) with cache k: the ring of the last inputs and the history
  // (exact) or the recurrence state after position len - 1 (modal) of every row.
  static void decode_begin(context& ctx, const config& c, const params&, const cache& k, decode_state& s,
                           index_t rows, index_t len) {
    const index_t nb = c.blocks(), D = c.hidden, K = c.short_filter, n = rows * len * D;
    for (index_t r = 0; r < rows; ++r)
      for (index_t t = std::max<index_t>(0, len - K); t < len; ++t)
        for (index_t j = 0; j < nb; ++j)
          B::copy(ctx, D, static_cast<const T*>(k.proj.data + j * n + (r * len + t) * D),
                  s.ring.data + (r * K + t % K) * nb * D + j * D);
    for (index_t i = 0; i < c.convs(); ++i) {
      const T* w = k.w.data + i * n;  // (rows, len, D): convolution i's input
      if (s.modes == 0) {
        const index_t max_len = s.hist.size(2);
        HYENA_CHECK(len <= max_len, "hyena decode: prompt of ", len, " tokens exceeds the history's ", max_len);
        for (index_t r = 0; r < rows; ++r)
          B::copy(ctx, len * D, w + r * len * D, s.hist.data + (i * rows + r) * max_len * D);
      } else {
        B::modal_prefill(ctx, rows, D, s.modes, static_cast<const T*>(s.poles.data + i * D * s.modes * 2), w, len,
                         len, s.state.data + i * rows * D * s.modes * 2);
      }
    }
  }

  // x (rows, 1, D): row r's token at position pos[r] (host memory) -> y (the forward's output there).
  static void decode_step(context& ctx, const config& c, const params& p, decode_state& s, ctview x, tview y,
                          const index_t* pos) {
    const index_t rows = x.size(0), N = c.order, R = c.rank, D = c.hidden, K = c.short_filter, W = c.width();
    if (s.modes == 0)
      for (index_t r = 0; r < rows; ++r)
        HYENA_CHECK(pos[r] >= 0 && pos[r] < s.hist.size(2), "hyena decode: position ", pos[r], " of row ", r,
                    " outside the exact history's ", s.hist.size(2), " (the modal form has no limit)");
    tview pr(s.p.data, {rows, 1, W}), sr(s.s.data, {rows, 1, W});
    lin::forward(ctx, c.in_proj(), p.in_proj, s.in_proj, x, pr);
    for (index_t r = 0; r < rows; ++r)
      B::copy(ctx, W, static_cast<const T*>(pr.data + r * W), s.ring.data + (r * K + pos[r] % K) * W);
    const index_t* op_pos = positions_for_ops<B>(ctx, pos, rows);  // pos itself on the host
    B::short_conv_step(ctx, rows, W, K, static_cast<const T*>(s.ring.data), p.short_filter.weight.data,
                       p.short_filter.bias.data, op_pos, sr.data);
    auto block_of = [&](index_t r, index_t j) { return static_cast<const T*>(sr.data + r * W + j * D); };
    // Long convolution i at this position: w = x * v_in (v_in: a block, or s.v itself), the
    // step's output v = h_i * w + D_i w.
    auto long_conv = [&](index_t i, index_t x_block, index_t v_block) {
      for (index_t r = 0; r < rows; ++r) {
        const T* v_in = v_block < 0 ? static_cast<const T*>(s.v.data + r * D) : block_of(r, v_block);
        B::mul(ctx, D, block_of(r, x_block), v_in, s.w.data + r * D);
      }
      if (s.modes == 0) {
        const index_t max_len = s.hist.size(2);
        T* hist = s.hist.data + i * rows * max_len * D;
        for (index_t r = 0; r < rows; ++r)
          B::copy(ctx, D, static_cast<const T*>(s.w.data + r * D), hist + (r * max_len + pos[r]) * D);
        B::causal_conv_step(ctx, rows, D, static_cast<const T*>(hist), max_len,
                            static_cast<const T*>(s.h.data + i * D * max_len), max_len, op_pos, s.v.data);
      } else {
        const index_t m = s.modes;
        B::modal_step(ctx, rows, D, m, static_cast<const T*>(s.poles.data + i * D * m * 2),
                      static_cast<const T*>(s.residues.data + i * D * m * 2), s.state.data + i * rows * D * m * 2,
                      static_cast<const T*>(s.w.data), s.v.data);
      }
      B::scale_add(ctx, rows, D, p.bias.data + i * D, static_cast<const T*>(s.w.data), s.v.data);
    };
    if (R == 1) {  // v <- the last block; for i = N-1 .. 1: v = long conv of x_i * v; gated = x_0 v
      for (index_t i = N - 1; i >= 1; --i) long_conv(i - 1, i, i == N - 1 ? N : -1);
      for (index_t r = 0; r < rows; ++r)
        B::mul(ctx, D, block_of(r, 0), static_cast<const T*>(s.v.data + r * D), s.gated.data + r * D);
    } else {  // gated = sum_b x0_b * (long conv of x1_b * v)
      for (index_t b = 0; b < R; ++b) {
        long_conv(b, R + b, 2 * R);
        T* out = b == 0 ? s.gated.data : s.product.data;
        for (index_t r = 0; r < rows; ++r)
          B::mul(ctx, D, block_of(r, b), static_cast<const T*>(s.v.data + r * D), out + r * D);
        if (b > 0)
          B::add(ctx, rows * D, static_cast<const T*>(s.gated.data), static_cast<const T*>(s.product.data),
                 s.gated.data);
      }
    }
    lin::forward(ctx, c.out_proj(), p.out_proj, s.out_proj, s.gated, y);
  }

  // Row `row` starts again at position 0: the ring and history are overwritten as it goes
  // (reads never reach before position 0); the modal state is cleared.
  static void decode_reset(context& ctx, const config& c, decode_state& s, index_t row) {
    if (s.modes == 0) return;
    const index_t rows = s.state.size(1), per = c.hidden * s.modes * 2;
    for (index_t i = 0; i < c.convs(); ++i) B::fill(ctx, per, T(0), s.state.data + (i * rows + row) * per);
  }

 private:
  // The context scratch backward uses, in elements: d_blocks (nb n, in the order of the
  // blocks), the in_proj output's gradient (n), d_w (n), d_gated (n), d_h (C D seq), and at
  // rank > 1 one branch's output gradient (n); forward borrows its start at rank > 1.
  static index_t scratch_size(const config& c, index_t batch, index_t seq) {
    const index_t n = batch * seq * c.hidden;
    return (c.blocks() + 3 + (c.rank > 1 ? 1 : 0)) * n + c.convs() * c.hidden * seq;
  }
  static T* scratch(context& ctx, index_t n) { return context_scratch<hyena_operator, B, T>(ctx, n); }
};

}  // namespace hyena::nn
