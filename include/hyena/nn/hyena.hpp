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
// The long convolutions are causal, so output t depends on inputs 0..t only.
//
// Layout: in_proj runs as N+1 products, one per D-wide block of its output, so p and s are
// stored blocked, (N+1, batch, seq, D): every x_i and v is then a contiguous (batch, seq, D)
// tensor the elementwise and convolution ops use in place, with no strided copies in or out.
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

  template <class Self, class Fn>
  static void visit_fields(Self& h, Fn&& fn) {
    fn("order", h.order);
    fn("filter_order", h.filter_order);
    fn("emb_dim", h.emb_dim);
    fn("filter_layers", h.filter_layers);
    fn("short_filter", h.short_filter);
    fn("sin_freq", h.sin_freq);
  }
  void validate() const {
    HYENA_CHECK(order >= 2, "hyena: order must be >= 2, got ", order);
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

  static hyena_config from(const model_config& m, const hyena_hparams& h = {}) {
    return {.hidden = m.hidden, .order = h.order, .filter_order = h.filter_order, .emb_dim = h.emb_dim,
            .filter_layers = h.filter_layers, .short_filter = h.short_filter, .max_seq = m.max_seq,
            .sin_freq = h.sin_freq};
  }
  index_t width() const { return (order + 1) * hidden; }  // channels after in_proj
  linear_config in_proj() const { return {hidden, width(), true, init_std}; }
  linear_config out_proj() const { return {hidden, hidden, true, init_std}; }
  short_conv_config short_conv() const { return {width(), short_filter}; }
  implicit_filter_config filter() const {
    return {.channels = (order - 1) * hidden, .emb_dim = emb_dim, .width = filter_order, .inner = filter_layers,
            .max_seq = max_seq, .sin_freq = sin_freq};
  }
  void validate() const {
    HYENA_CHECK(order >= 2, "hyena: order must be >= 2, got ", order);
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
    tview bias;  // (N-1, D): the per-channel skip term D_i of each long convolution
    typename lin::params out_proj;
    template <class W>
    void visit(W&& w, const config& c) {
      in_proj.visit(w.child("in_proj"), c.in_proj());
      short_filter.visit(w.child("short_conv"), c.short_conv());
      filter.visit(w.child("filter"), c.filter());
      w("bias", bias, {c.order - 1, c.hidden});
      out_proj.visit(w.child("out_proj"), c.out_proj());
    }
  };

  struct cache {
    typename lin::cache in_proj, out_proj;  // views of their inputs
    typename filt::cache filter;
    tview proj;    // (N+1, batch, seq, D): in_proj output, blocked
    tview blocks;  // (N+1, batch, seq, D): the short conv's output x_0 .. x_{N-1}, v
    tview h;       // ((N-1) D, seq)
    tview w, v;         // (N-1, batch, seq, D): w_i = x_i * v_{i+1} and v_i (index i-1)
    tview gated;        // (batch, seq, D): x_0 * v_1, the out_proj input
    template <class W>
    void visit(W&& wk, const config& c, index_t batch, index_t seq) {
      const index_t N = c.order, D = c.hidden;
      filter.visit(wk.child("filter"), c.filter(), batch, seq);
      wk("proj", proj, {N + 1, batch, seq, D});
      wk("blocks", blocks, {N + 1, batch, seq, D});
      wk("h", h, {(N - 1) * D, seq});
      wk("w", w, {N - 1, batch, seq, D});
      wk("v", v, {N - 1, batch, seq, D});
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

  static void forward(context& ctx, const config& c, const params& p, cache& k, ctview u, tview y) {
    c.validate();
    HYENA_CHECK(u.rank() == 3 && u.size(2) == c.hidden && u.contiguous(), "hyena: input must be contiguous (batch, seq, ",
                c.hidden, "), got ", u.shape);
    check_same_shape(u, y, "hyena: output vs input");
    const index_t batch = u.size(0), seq = u.size(1), N = c.order, D = c.hidden;
    HYENA_CHECK(seq >= 1 && seq <= c.max_seq, "hyena: sequence length ", seq, " not in [1, max_seq = ", c.max_seq, "]");
    const index_t rows = batch * seq, n = rows * D, K = c.short_filter;
    tview proj = leading(k.proj, {N + 1, batch, seq, D}, "hyena");
    tview blocks = leading(k.blocks, {N + 1, batch, seq, D}, "hyena"), h = leading(k.h, {(N - 1) * D, seq}, "hyena");
    tview w = leading(k.w, {N - 1, batch, seq, D}, "hyena"), v = leading(k.v, {N - 1, batch, seq, D}, "hyena");
    tview gated = leading(k.gated, {batch, seq, D}, "hyena");
    auto block = [&](const tview& t, index_t j) { return t.data + j * n; };

    // p_j = u W_j^T + b_j and s_j = short_conv_j(p_j), block by block (W_j: rows jD.. of in_proj).
    for (index_t j = 0; j <= N; ++j) {
      B::gemm(ctx, false, true, rows, D, D, T(1), u.data, D, p.in_proj.weight.data + j * D * D, D, T(0),
              block(proj, j), D);
      B::add_bias(ctx, rows, D, p.in_proj.bias.data + j * D, block(proj, j));
      B::short_conv_forward(ctx, batch, seq, D, K, static_cast<const T*>(block(proj, j)),
                            p.short_filter.weight.data + j * D * K, p.short_filter.bias.data + j * D, block(blocks, j));
    }
    k.in_proj.x = u;
    filt::forward(ctx, c.filter(), p.filter, k.filter, seq, h);

    const T* cur = block(blocks, N);  // v
    for (index_t i = N - 1; i >= 1; --i) {
      T* wi = block(w, i - 1);
      T* vi = block(v, i - 1);
      B::mul(ctx, n, block(blocks, i), cur, wi);
      B::causal_conv_forward(ctx, batch, seq, D, static_cast<const T*>(wi), h.data + (i - 1) * D * seq, seq, vi);
      B::scale_add(ctx, rows, D, p.bias.data + (i - 1) * D, static_cast<const T*>(wi), vi);
      cur = vi;
    }
    B::mul(ctx, n, block(blocks, 0), cur, gated.data);
    lin::forward(ctx, c.out_proj(), p.out_proj, k.out_proj, gated, y);
  }

  static void backward(context& ctx, const config& c, const params& p, const cache& k, ctview dy, tview du,
                       params& g) {
    HYENA_CHECK(dy.rank() == 3 && dy.size(2) == c.hidden && dy.contiguous(), "hyena: output gradient must be ",
                "contiguous (batch, seq, ", c.hidden, "), got ", dy.shape);
    const index_t batch = dy.size(0), seq = dy.size(1), N = c.order, D = c.hidden;
    HYENA_CHECK(k.in_proj.x.shape == dy.shape, "hyena: output gradient ", dy.shape, " does not match the forward input ",
                k.in_proj.x.shape);
    if (!du.empty()) check_same_shape(du, dy, "hyena: input gradient vs output gradient");
    const index_t rows = batch * seq, n = rows * D;
    tview blocks = leading(k.blocks, {N + 1, batch, seq, D}, "hyena"), h = leading(k.h, {(N - 1) * D, seq}, "hyena");
    tview w = leading(k.w, {N - 1, batch, seq, D}, "hyena"), v = leading(k.v, {N - 1, batch, seq, D}, "hyena");
    // Scratch that backward alone needs lives in the context, shared by every layer, not in
    // each layer's cache: (N+1) n for d_blocks, one block more for the in_proj output's
    // gradient, n each for d_w and d_gated, and the filter gradient. v's gradient d_v ends up
    // as the last block of d_blocks, so it is kept there throughout.
    T* ws = scratch(ctx, (N + 4) * n + (N - 1) * D * seq);
    tview d_blocks(ws, {N + 1, batch, seq, D});
    tview d_v(d_blocks.data + N * n, {batch, seq, D}), d_w(ws + (N + 2) * n, {batch, seq, D});
    tview d_gated(ws + (N + 3) * n, {batch, seq, D}), d_h(ws + (N + 4) * n, {(N - 1) * D, seq});
    auto block = [&](const tview& t, index_t j) { return t.data + j * n; };

    // y = out_proj(x_0 * v_1)
    lin::backward(ctx, c.out_proj(), p.out_proj, k.out_proj, dy, d_gated, g.out_proj);
    B::mul(ctx, n, static_cast<const T*>(d_gated.data), block(v, 0), block(d_blocks, 0));
    B::mul(ctx, n, static_cast<const T*>(d_gated.data), block(blocks, 0), d_v.data);
    B::fill(ctx, d_h.numel(), T(0), d_h.data);
    // Undo the recurrence from its last step (i = 1) to its first (i = N-1); d_v holds dv_i.
    for (index_t i = 1; i <= N - 1; ++i) {
      const T* wi = block(w, i - 1);
      const T* next = i + 1 <= N - 1 ? block(v, i) : block(blocks, N);  // v_{i+1}, the conv's gate partner
      B::causal_conv_backward(ctx, batch, seq, D, wi, h.data + (i - 1) * D * seq, seq, static_cast<const T*>(d_v.data),
                              d_w.data, d_h.data + (i - 1) * D * seq);
      B::scale_add(ctx, rows, D, p.bias.data + (i - 1) * D, static_cast<const T*>(d_v.data), d_w.data);
      B::scale_grad(ctx, rows, D, wi, static_cast<const T*>(d_v.data), g.bias.data + (i - 1) * D);
      B::mul(ctx, n, static_cast<const T*>(d_w.data), next, block(d_blocks, i));
      B::mul(ctx, n, static_cast<const T*>(d_w.data), block(blocks, i), d_v.data);
    }
    backward_inputs(ctx, c, p, k, d_blocks, d_h, du, g);
  }

  // The lower half of backward, from gradients w.r.t. the short conv's outputs d_blocks
  // (N+1, batch, seq, D: x_0 .. x_{N-1}, v, assigned by the caller) and w.r.t. the filters
  // d_h ((N-1) D, seq): through the filter, the short conv and in_proj to the parameters (+=)
  // and to the input du (assigned; skipped when empty). An objective on the operator's
  // internals (train/operator_alignment.hpp) enters here.
  static void backward_inputs(context& ctx, const config& c, const params& p, const cache& k, ctview d_blocks,
                              ctview d_h, tview du, params& g) {
    const index_t N = c.order, D = c.hidden, batch = k.in_proj.x.size(0), seq = k.in_proj.x.size(1);
    const index_t rows = batch * seq, n = rows * D, K = c.short_filter;
    HYENA_CHECK(d_blocks.contiguous() && d_blocks.numel() == (N + 1) * n, "hyena: block gradients must be (", N + 1,
                ", ", batch, ", ", seq, ", ", D, "), got ", d_blocks.shape);
    HYENA_CHECK(d_h.contiguous() && d_h.numel() == (N - 1) * D * seq, "hyena: filter gradient must be (",
                (N - 1) * D, ", ", seq, "), got ", d_h.shape);
    if (!du.empty()) check_same_shape(du, k.in_proj.x, "hyena: input gradient vs input");
    tview proj = leading(k.proj, {N + 1, batch, seq, D}, "hyena");
    filt::backward(ctx, c.filter(), p.filter, k.filter, d_h, g.filter);
    // The in_proj output's gradient, one block at a time, in the context's scratch.
    T* d_proj = scratch(ctx, (N + 4) * n + (N - 1) * D * seq) + (N + 1) * n;
    // Block by block: through the short conv, then in_proj (du sums the blocks' products).
    const T* u = k.in_proj.x.data;
    for (index_t j = 0; j <= N; ++j) {
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
  // (nn/hyena_modal.hpp fits them to the filters).
  struct decode_state {
    index_t modes = 0;
    tview ring;              // (rows, K, (N+1) D)
    tview hist;              // exact: (N-1, rows, max_len, D)
    tview h;                 // exact: ((N-1) D, max_len), the filters
    tview poles, residues;   // modal: ((N-1) D, modes, 2) as (re, im)
    tview state;             // modal: (N-1, rows, D, modes * 2), (re, im) pairs
    tview p, s, w, v, gated;  // one step's (rows, (N+1) D) x 2 and (rows, D) x 3
    typename lin::cache in_proj, out_proj;
    template <class W>
    void visit(W& wk, const config& c, index_t rows, index_t max_len, index_t n_modes) {
      const index_t N = c.order, D = c.hidden;
      modes = n_modes;
      wk("ring", ring, {rows, c.short_filter, (N + 1) * D});
      if (n_modes == 0) {
        wk("hist", hist, {N - 1, rows, max_len, D});
        wk("h", h, {(N - 1) * D, max_len});
      } else {
        wk("poles", poles, {(N - 1) * D, n_modes, 2});
        wk("residues", residues, {(N - 1) * D, n_modes, 2});
        wk("state", state, {N - 1, rows, D, n_modes * 2});
      }
      wk("p", p, {rows, 1, (N + 1) * D});
      wk("s", s, {rows, 1, (N + 1) * D});
      wk("w", w, {rows, D});
      wk("v", v, {rows, D});
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
    const index_t N = c.order, D = c.hidden, K = c.short_filter, n = rows * len * D;
    for (index_t r = 0; r < rows; ++r)
      for (index_t t = std::max<index_t>(0, len - K); t < len; ++t)
        for (index_t j = 0; j <= N; ++j)
          B::copy(ctx, D, static_cast<const T*>(k.proj.data + j * n + (r * len + t) * D),
                  s.ring.data + (r * K + t % K) * (N + 1) * D + j * D);
    for (index_t i = 0; i < N - 1; ++i) {
      const T* w = k.w.data + i * n;  // (rows, len, D): w_{i+1}
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
    const index_t rows = x.size(0), N = c.order, D = c.hidden, K = c.short_filter, W = (N + 1) * D;
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
    // v <- the last block; for i = N-1 .. 1: w = x_i v, v = h_i * w + D_i w; gated = x_0 v.
    auto block_of = [&](index_t r, index_t j) { return static_cast<const T*>(sr.data + r * W + j * D); };
    for (index_t r = 0; r < rows; ++r) B::copy(ctx, D, block_of(r, N), s.v.data + r * D);
    for (index_t i = N - 1; i >= 1; --i) {
      for (index_t r = 0; r < rows; ++r)
        B::mul(ctx, D, block_of(r, i), static_cast<const T*>(s.v.data + r * D), s.w.data + r * D);
      if (s.modes == 0) {
        const index_t max_len = s.hist.size(2);
        T* hist = s.hist.data + (i - 1) * rows * max_len * D;
        for (index_t r = 0; r < rows; ++r)
          B::copy(ctx, D, static_cast<const T*>(s.w.data + r * D), hist + (r * max_len + pos[r]) * D);
        B::causal_conv_step(ctx, rows, D, static_cast<const T*>(hist), max_len,
                            static_cast<const T*>(s.h.data + (i - 1) * D * max_len), max_len, op_pos, s.v.data);
      } else {
        const index_t m = s.modes;
        B::modal_step(ctx, rows, D, m, static_cast<const T*>(s.poles.data + (i - 1) * D * m * 2),
                      static_cast<const T*>(s.residues.data + (i - 1) * D * m * 2),
                      s.state.data + (i - 1) * rows * D * m * 2, static_cast<const T*>(s.w.data), s.v.data);
      }
      B::scale_add(ctx, rows, D, p.bias.data + (i - 1) * D, static_cast<const T*>(s.w.data), s.v.data);
    }
    for (index_t r = 0; r < rows; ++r)
      B::mul(ctx, D, block_of(r, 0), static_cast<const T*>(s.v.data + r * D), s.gated.data + r * D);
    lin::forward(ctx, c.out_proj(), p.out_proj, s.out_proj, s.gated, y);
  }

  // Row `row` starts again at position 0: the ring and history are overwritten as it goes
  // (reads never reach before position 0); the modal state is cleared.
  static void decode_reset(context& ctx, const config& c, decode_state& s, index_t row) {
    if (s.modes == 0) return;
    const index_t rows = s.state.size(1), per = c.hidden * s.modes * 2;
    for (index_t i = 0; i < c.order - 1; ++i) B::fill(ctx, per, T(0), s.state.data + (i * rows + row) * per);
  }

 private:
  struct workspace {
    tensor<T, typename B::memory> buf;
  };
  static T* scratch(context& ctx, index_t n) {
    auto& ws = ctx.template state<workspace>();
    if (ws.buf.numel() < n) ws.buf = tensor<T, typename B::memory>(shape{n});
    return ws.buf.data();
  }
};

}  // namespace hyena::nn
