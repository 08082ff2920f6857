// test_cuda_fused_ops.cu: the cuda ops added to complete the backend contract
// (backend/concept.hpp) against cpu_ref: the fused causal attention, the distiller's alignment
// ops, the decode ops, the reverse and top-k KL losses, scale / axpby and the fused AdamW
// update. Same conventions as test_cuda_ops.cu: random never-zero inputs, outputs poisoned with
// NaN before the call, tolerances per precision (float 1e-5 relative, double 1e-12; atomics and
// long sums compared against max|want|).
#include <algorithm>
#include <limits>
#include <tuple>

#include "cuda_test_util.cuh"

using namespace cuda_test;

TEST_CASE_TEMPLATE("scale and axpby match cpu_ref", T, float, double) {
  const index_t n = 10007;
  auto x = random_vec<T>(n, 101), y = random_vec<T>(n, 102);
  dbuf<T> dx(x), dy(y);
  std::vector<T> want = y;
  ref::scale<T>(hctx(), n, T(0.37), want.data());
  gpu::scale<T>(dctx(), n, T(0.37), dy.p);
  check_close(dy.download(), want, 0, "scale");
  ref::axpby<T>(hctx(), n, T(-1.5), x.data(), T(0.25), want.data());
  gpu::axpby<T>(dctx(), n, T(-1.5), dx.p, T(0.25), dy.p);
  check_close(dy.download(), want, tol<T>(1e-6, 1e-15), "axpby");
}

TEST_CASE_TEMPLATE("fused causal attention forward/backward match cpu_ref (MHA and GQA)", T, float, double) {
  for (auto [heads, kv_heads, D] : {std::tuple<index_t, index_t, index_t>{4, 4, 16}, {6, 2, 40}, {2, 1, 64}}) {
    CAPTURE(heads);
    CAPTURE(kv_heads);
    CAPTURE(D);
    const index_t batch = 2, seq = 45, width = (heads + 2 * kv_heads) * D, qkv_row = width + 3,
                  out_row = heads * D + 5;
    const T scale = T(1.0 / std::sqrt(double(D)));
    auto qkv = random_vec<T>(batch * seq * qkv_row, 103), dout = random_vec<T>(batch * seq * out_row, 104);
    std::vector<T> out(batch * seq * out_row, T(0)), lse(batch * heads * seq), dqkv(batch * seq * qkv_row, T(7));
    ref::causal_attention_forward<T>(hctx(), batch, seq, heads, kv_heads, D, scale, qkv.data(), qkv_row, out.data(),
                                     out_row, lse.data());
    dbuf<T> dq(qkv), ddout(dout), gout(out), glse = poisoned<T>(batch * heads * seq);
    gout.poison();
    gpu::causal_attention_forward<T>(dctx(), batch, seq, heads, kv_heads, D, scale, dq.p, qkv_row, gout.p, out_row,
                                     glse.p);
    auto got_out = gout.download();
    for (index_t r = 0; r < batch * seq; ++r)  // the padding columns are not the op's
      for (index_t c = heads * D; c < out_row; ++c) got_out[r * out_row + c] = out[r * out_row + c];
    check_close(got_out, out, tol<T>(1e-5, 1e-12), "attention out");
    check_close(glse.download(), lse, tol<T>(1e-5, 1e-12), "attention lse");

    ref::causal_attention_backward<T>(hctx(), batch, seq, heads, kv_heads, D, scale, qkv.data(), qkv_row, out.data(),
                                      dout.data(), out_row, lse.data(), dqkv.data());
    dbuf<T> gdq(batch * seq * qkv_row), rout(out), rlse(lse);
    gdq.upload(std::vector<T>(batch * seq * qkv_row, T(7)));  // the padding keeps its value
    for (index_t r = 0; r < batch * seq; ++r) {  // every width column must be written: poison them
      std::vector<T> nan_row(width, std::numeric_limits<T>::quiet_NaN());
      hyena::device_memory::to_device(gdq.p + r * qkv_row, nan_row.data(), sizeof(T) * width);
    }
    gpu::causal_attention_backward<T>(dctx(), batch, seq, heads, kv_heads, D, scale, dq.p, qkv_row, rout.p, ddout.p,
                                      out_row, rlse.p, gdq.p);
    check_close_max(gdq.download(), dqkv, tol<T>(1e-5, 1e-12), "attention dqkv");
  }
  // head_dim beyond the kernel's limit is refused by name
  dbuf<T> any(64);
  CHECK_THROWS_WITH_AS(gpu::causal_attention_forward<T>(dctx(), 1, 1, 1, 1, 300, T(1), any.p, 900, any.p, 300, any.p),
                       doctest::Contains("head_dim 300"), hyena::error);
}

TEST_CASE_TEMPLATE("alignment ops match cpu_ref", T, float, double) {
  const index_t batch = 2, seq = 21, heads = 4, kv_heads = 2, D = 8, qkv_row = (heads + 2 * kv_heads) * D;
  const index_t C = heads * D;
  const T scale = T(0.35);
  auto qkv = random_vec<T>(batch * seq * qkv_row, 105);
  std::vector<T> out(batch * seq * heads * D), lse(batch * heads * seq), probs(batch * heads * seq * seq);
  ref::causal_attention_forward<T>(hctx(), batch, seq, heads, kv_heads, D, scale, qkv.data(), qkv_row, out.data(),
                                   heads * D, lse.data());
  ref::causal_attention_probs<T>(hctx(), batch, seq, heads, kv_heads, D, scale, qkv.data(), qkv_row, lse.data(),
                                 probs.data());
  dbuf<T> dqkv(qkv), dlse(lse), gprobs = poisoned<T>(index_t(probs.size()));
  gpu::causal_attention_probs<T>(dctx(), batch, seq, heads, kv_heads, D, scale, dqkv.p, qkv_row, dlse.p, gprobs.p);
  check_close(gprobs.download(), probs, tol<T>(1e-5, 1e-12), "causal_attention_probs");

  std::vector<double> sums(heads * seq, 0.25);
  ref::attention_lag_sums<T>(hctx(), batch, heads, seq, probs.data(), sums.data());
  dbuf<T> dprobs(probs);
  dbuf<double> dsums(std::vector<double>(heads * seq, 0.25));
  gpu::attention_lag_sums<T>(dctx(), batch, heads, seq, dprobs.p, dsums.p);
  check_close(dsums.download(), sums, 1e-12, "attention_lag_sums");

  auto x0 = random_vec<T>(batch * seq * C, 106), x1 = random_vec<T>(batch * seq * C, 107);
  auto h = random_vec<T>(C * (seq + 2), 108, 0.2), bias = random_vec<T>(C, 109), dbias0 = random_vec<T>(C, 110);
  std::vector<T> d_x0(batch * seq * C), d_x1(batch * seq * C), d_h(C * (seq + 2), T(3)), d_bias = dbias0;
  const double want = ref::hyena_attention_alignment<T>(hctx(), batch, seq, C, D, x0.data(), x1.data(), h.data(),
                                                        seq + 2, bias.data(), probs.data(), d_x0.data(), d_x1.data(),
                                                        d_h.data(), d_bias.data(), T(0.5));
  dbuf<T> dx0(x0), dx1(x1), dh(h), db(bias), gdx0 = poisoned<T>(batch * seq * C), gdx1 = poisoned<T>(batch * seq * C),
      gdh(std::vector<T>(C * (seq + 2), T(3))), gdb(dbias0);
  for (index_t c = 0; c < C; ++c) {  // the filter rows' first seq entries must be written
    std::vector<T> nan_row(seq, std::numeric_limits<T>::quiet_NaN());
    hyena::device_memory::to_device(gdh.p + c * (seq + 2), nan_row.data(), sizeof(T) * seq);
  }
  const double got = gpu::hyena_attention_alignment<T>(dctx(), batch, seq, C, D, dx0.p, dx1.p, dh.p, seq + 2, db.p,
                                                       dprobs.p, gdx0.p, gdx1.p, gdh.p, gdb.p, T(0.5));
  CHECK(got == doctest::Approx(want).epsilon(1e-9));
  check_close(gdx0.download(), d_x0, tol<T>(1e-5, 1e-12), "alignment d_x0");
  check_close(gdx1.download(), d_x1, tol<T>(1e-5, 1e-12), "alignment d_x1");
  check_close_max(gdh.download(), d_h, tol<T>(1e-5, 1e-12), "alignment d_h");
  check_close_max(gdb.download(), d_bias, tol<T>(1e-5, 1e-12), "alignment d_bias");
}

TEST_CASE_TEMPLATE("decode ops match cpu_ref", T, float, double) {
  const index_t rows = 3, heads = 4, kv_heads = 2, D = 16, max_len = 40, channels = 24, kernel = 3, modes = 5;
  const std::vector<index_t> pos{0, 17, 39};
  dbuf<index_t> dpos(pos);
  {  // rotary at per-row positions
    const index_t row_stride = heads * D + 7;
    auto x = random_vec<T>(rows * row_stride, 111);
    std::vector<T> want = x;
    ref::rotary_at<T>(hctx(), rows, heads, D, row_stride, 12, 10000.0, pos.data(), want.data());
    dbuf<T> dx(x);
    gpu::rotary_at<T>(dctx(), rows, heads, D, row_stride, 12, 10000.0, dpos.p, dx.p);
    check_close(dx.download(), want, tol<T>(1e-5, 1e-12), "rotary_at");
  }
  {  // attention over a KV cache
    const index_t q_row = heads * D + 3, out_row = heads * D;
    auto q = random_vec<T>(rows * q_row, 112), kc = random_vec<T>(rows * max_len * kv_heads * D, 113),
         vc = random_vec<T>(rows * max_len * kv_heads * D, 114);
    std::vector<T> want(rows * out_row);
    ref::attention_decode<T>(hctx(), rows, heads, kv_heads, D, T(0.25), q.data(), q_row, kc.data(), vc.data(), max_len,
                             pos.data(), want.data(), out_row);
    dbuf<T> dq(q), dk(kc), dv(vc), gout = poisoned<T>(rows * out_row);
    gpu::attention_decode<T>(dctx(), rows, heads, kv_heads, D, T(0.25), dq.p, q_row, dk.p, dv.p, max_len, dpos.p,
                             gout.p, out_row);
    check_close(gout.download(), want, tol<T>(1e-5, 1e-12), "attention_decode");
  }
  {  // the short convolution's step over a ring of the last `kernel` inputs
    auto ring = random_vec<T>(rows * kernel * channels, 115), w = random_vec<T>(channels * kernel, 116),
         b = random_vec<T>(channels, 117);
    std::vector<T> want(rows * channels);
    ref::short_conv_step<T>(hctx(), rows, channels, kernel, ring.data(), w.data(), b.data(), pos.data(), want.data());
    dbuf<T> dr(ring), dw(w), db(b), gy = poisoned<T>(rows * channels);
    gpu::short_conv_step<T>(dctx(), rows, channels, kernel, dr.p, dw.p, db.p, dpos.p, gy.p);
    check_close(gy.download(), want, tol<T>(1e-5, 1e-12), "short_conv_step");
  }
  {  // the long convolution's step over the history
    auto hist = random_vec<T>(rows * max_len * channels, 118), h = random_vec<T>(channels * (max_len + 1), 119);
    std::vector<T> want(rows * channels);
    ref::causal_conv_step<T>(hctx(), rows, channels, hist.data(), max_len, h.data(), max_len + 1, pos.data(),
                             want.data());
    dbuf<T> dhist(hist), dh(h), gy = poisoned<T>(rows * channels);
    gpu::causal_conv_step<T>(dctx(), rows, channels, dhist.p, max_len, dh.p, max_len + 1, dpos.p, gy.p);
    check_close_max(gy.download(), want, tol<T>(1e-5, 1e-12), "causal_conv_step");
  }
  {  // the modal recurrence: prefill, then a step
    auto poles = random_vec<T>(channels * modes * 2, 120, 0.6), res = random_vec<T>(channels * modes * 2, 121),
         hist = random_vec<T>(rows * max_len * channels, 122), w = random_vec<T>(rows * channels, 123);
    std::vector<T> state(rows * channels * modes * 2), y(rows * channels);
    ref::modal_prefill<T>(hctx(), rows, channels, modes, poles.data(), hist.data(), max_len, 25, state.data());
    dbuf<T> dp(poles), dr(res), dhist(hist), dw(w), gstate = poisoned<T>(index_t(state.size())),
        gy = poisoned<T>(rows * channels);
    gpu::modal_prefill<T>(dctx(), rows, channels, modes, dp.p, dhist.p, max_len, 25, gstate.p);
    check_close_max(gstate.download(), state, tol<T>(1e-5, 1e-12), "modal_prefill");
    ref::modal_step<T>(hctx(), rows, channels, modes, poles.data(), res.data(), state.data(), w.data(), y.data());
    gpu::modal_step<T>(dctx(), rows, channels, modes, dp.p, dr.p, gstate.p, dw.p, gy.p);
    check_close_max(gstate.download(), state, tol<T>(1e-5, 1e-12), "modal_step state");
    check_close_max(gy.download(), y, tol<T>(1e-5, 1e-12), "modal_step y");
  }
}

TEST_CASE_TEMPLATE("reverse KL and top-k KL match cpu_ref", T, float, double) {
  const index_t rows = 7, vocab = 1500;
  auto t = random_vec<T>(rows * vocab, 124, 4.0), s = random_vec<T>(rows * vocab, 125, 4.0);
  for (index_t i = 0; i < vocab; i += 97) t[i] = t[i + 1];  // ties: the lower id goes first
  dbuf<T> dt(t), ds(s);
  for (index_t k : {index_t(1), index_t(10), index_t(257), vocab, vocab + 5}) {
    CAPTURE(k);
    std::vector<T> losses(rows), grad(rows * vocab);
    const double want = ref::topk_kl_divergence<T>(hctx(), rows, vocab, k, t.data(), s.data(), T(1.5), losses.data(),
                                                   grad.data(), T(0.5));
    auto gl = poisoned<T>(rows), gg = poisoned<T>(rows * vocab);
    const double got = gpu::topk_kl_divergence<T>(dctx(), rows, vocab, k, dt.p, ds.p, T(1.5), gl.p, gg.p, T(0.5));
    CHECK(got == doctest::Approx(want).epsilon(1e-9));
    check_close(gl.download(), losses, tol<T>(1e-5, 1e-12), "topk losses");
    check_close(gg.download(), grad, tol<T>(1e-5, 1e-12), "topk grad");
  }
  std::vector<T> losses(rows), grad(rows * vocab);
  const double want = ref::reverse_kl_divergence<T>(hctx(), rows, vocab, t.data(), s.data(), T(2), losses.data(),
                                                    grad.data(), T(0.5));
  auto gl = poisoned<T>(rows), gg = poisoned<T>(rows * vocab);
  const double got = gpu::reverse_kl_divergence<T>(dctx(), rows, vocab, dt.p, ds.p, T(2), gl.p, gg.p, T(0.5));
  CHECK(got == doctest::Approx(want).epsilon(1e-9));
  check_close(gl.download(), losses, tol<T>(1e-5, 1e-12), "reverse KL losses");
  check_close(gg.download(), grad, tol<T>(1e-5, 1e-12), "reverse KL grad");
}

TEST_CASE_TEMPLATE("adamw_step matches cpu_ref to an ulp; gradients untouched", T, float, double) {
  // Three segments of different lengths, groups and a clip factor.
  const std::vector<index_t> sizes{1, 5000, 70000};
  std::vector<std::vector<T>> p, g, m, v;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    p.push_back(random_vec<T>(sizes[k], unsigned(130 + k)));
    g.push_back(random_vec<T>(sizes[k], unsigned(140 + k), 0.1));
    m.push_back(random_vec<T>(sizes[k], unsigned(150 + k), 0.01));
    auto vk = random_vec<T>(sizes[k], unsigned(160 + k), 0.001);
    for (auto& x : vk) x = std::abs(x);
    v.push_back(vk);
  }
  hyena::backend::adamw_hyper h{0.9, 0.95, 1e-8, 1 - std::pow(0.9, 3), std::sqrt(1 - std::pow(0.95, 3)), 0.7};
  std::vector<hyena::backend::adamw_segment<T>> host_segs, dev_segs;
  std::vector<dbuf<T>> bufs;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    const double lr = 1e-3 * double(k + 1), decay = 1 - lr * (k == 1 ? 0.0 : 0.1);
    host_segs.push_back({p[k].data(), g[k].data(), m[k].data(), v[k].data(), sizes[k], lr, decay});
    bufs.emplace_back(p[k]);
    bufs.emplace_back(g[k]);
    bufs.emplace_back(m[k]);
    bufs.emplace_back(v[k]);
    dev_segs.push_back({bufs[4 * k].p, bufs[4 * k + 1].p, bufs[4 * k + 2].p, bufs[4 * k + 3].p, sizes[k], lr, decay});
  }
  ref::adamw_step<T>(hctx(), host_segs.data(), index_t(host_segs.size()), h);
  gpu::adamw_step<T>(dctx(), dev_segs.data(), index_t(dev_segs.size()), h);
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    // The same double arithmetic on both sides; the device may contract into FMAs, so allow an ulp.
    check_close(bufs[4 * k].download(), p[k], tol<T>(2e-7, 1e-15), "adamw param");
    check_close(bufs[4 * k + 2].download(), m[k], tol<T>(2e-7, 1e-15), "adamw m");
    check_close(bufs[4 * k + 3].download(), v[k], tol<T>(2e-7, 1e-15), "adamw v");
    CHECK(bufs[4 * k + 1].download() == g[k]);  // gradients are read, never written
  }
}
