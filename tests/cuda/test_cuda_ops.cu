// test_cuda_ops.cu: every op of the cuda backend against cpu_ref, on random (never zero)
// inputs, with outputs poisoned by NaN before the call so an unwritten element fails.
//
// Tolerances (float): pointwise maps, norms and softmax are evaluated in double on both
// sides, so 1e-5 relative (per element, with a floor of 1e-3 * max|want| for elements that
// cancel to near zero). GEMM: cpu_ref accumulates in float in a different order from cuBLAS,
// so 1e-5 relative to max|C| (k <= 100). Column reductions over many rows: 1e-5 relative to
// max. FFT convolution: 1e-5 relative to max|y| (cuFFT float error grows like eps * log N).
// Losses: the returned sums are compared at 1e-9 relative (both accumulate in double).
// Double runs use 1e-12 (1e-10 for the FFT).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.cuh"

using namespace cuda_test;

TEST_CASE("device_memory and cuda_context basics") {
  auto h = random_vec<float>(1000, 1);
  dbuf<float> a(h), b(1000);
  hyena::device_memory::copy(b.p, a.p, sizeof(float) * 1000);
  CHECK(b.download() == h);
  hyena::device_memory::zero(b.p, sizeof(float) * 1000);
  CHECK(b.download() == std::vector<float>(1000, 0.0f));
  auto& c = dctx();
  CHECK(!c.allow_tf32());
  c.set_allow_tf32(true);
  CHECK(c.allow_tf32());
  c.set_allow_tf32(false);
  CHECK(c.workspace(1 << 20) != nullptr);
  CHECK(c.workspace_bytes() >= (1u << 20));
  CHECK_THROWS_AS(gpu::context(1 << 20), hyena::error);  // no such device
  std::string name = gpu::name;
  CHECK(name == "cuda");
  // tensor / view over device memory: the owning type works unchanged.
  hyena::tensor<float, hyena::device_memory> t(hyena::shape{4, 250});
  t.zero();
  hyena::view_of<gpu, float> v = t.v();
  gpu::axpy<float>(c, v.numel(), 2.0f, a.p, v.data);
  std::vector<float> back(1000);
  c.synchronize();
  hyena::device_memory::to_host(back.data(), t.data(), sizeof(float) * 1000);
  for (auto& x : h) x *= 2.0f;
  CHECK(back == h);
}

TEST_CASE_TEMPLATE("gemm matches cpu_ref for every transpose and beta", T, float, double) {
  const index_t m = 33, n = 47, k = 65;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (double beta : {0.0, 0.5}) {
        CAPTURE(ta);
        CAPTURE(tb);
        CAPTURE(beta);
        index_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
        auto a = random_vec<T>((ta ? k : m) * lda, 2), b = random_vec<T>((tb ? n : k) * ldb, 3);
        auto c = random_vec<T>(m * ldc, 4);
        std::vector<T> want = c;
        if (beta == 0.0)
          for (auto& v : want) v = T(NAN);  // beta == 0 must not read C
        ref::gemm<T>(hctx(), ta, tb, m, n, k, T(1.5), a.data(), lda, b.data(), ldb, T(beta), want.data(), ldc);
        dbuf<T> da(a), db(b), dc(c);
        if (beta == 0.0) dc.poison();
        gpu::gemm<T>(dctx(), ta, tb, m, n, k, T(1.5), da.p, lda, db.p, ldb, T(beta), dc.p, ldc);
        auto got = dc.download();
        std::vector<T> gw, ww;  // only the m x n block: padding columns stay as they were (or NaN)
        for (index_t i = 0; i < m; ++i)
          for (index_t j = 0; j < n; ++j) {
            gw.push_back(got[i * ldc + j]);
            ww.push_back(want[i * ldc + j]);
          }
        check_close_max(gw, ww, tol<T>(1e-5, 1e-12), "gemm");
      }
}

TEST_CASE_TEMPLATE("gemm_batched with a shared A (stride 0) matches cpu_ref", T, float, double) {
  const index_t m = 16, n = 24, k = 40, batch = 5;
  auto a = random_vec<T>(k * m, 5), b = random_vec<T>(batch * n * k, 6);
  std::vector<T> want(batch * m * n);
  ref::gemm_batched<T>(hctx(), true, true, m, n, k, T(1), a.data(), m, 0, b.data(), k, n * k, T(0), want.data(), n,
                       m * n, batch);
  dbuf<T> da(a), db(b);
  auto dc = poisoned<T>(batch * m * n);
  gpu::gemm_batched<T>(dctx(), true, true, m, n, k, T(1), da.p, m, 0, db.p, k, n * k, T(0), dc.p, n, m * n, batch);
  check_close_max(dc.download(), want, tol<T>(1e-5, 1e-12), "gemm_batched");
}

TEST_CASE_TEMPLATE("elementwise ops match cpu_ref", T, float, double) {
  const index_t rows = 37, cols = 129, n = rows * cols;
  auto a = random_vec<T>(n, 7, 3.0), b = random_vec<T>(n, 8), bias = random_vec<T>(cols, 9);
  dbuf<T> da(a), db(b), dbias(bias);
  // Compares the first `count` outputs (all when count < 0); the device output starts as NaN
  // when `poison`, else as `init` like the host one.
  auto run = [&](const char* what, auto host_op, auto dev_op, std::vector<T> init, bool poison, double rel,
                 index_t count = -1) {
    std::vector<T> want = init;
    host_op(want.data());
    dbuf<T> y(init);
    if (poison) y.poison();
    dev_op(y.p);
    auto got = y.download();
    if (count >= 0) {
      got.resize(count);
      want.resize(count);
    }
    check_close(got, want, rel, what);
  };
  std::vector<T> zero(n, T(0)), init = random_vec<T>(n, 10);
  run(
      "fill", [&](T* y) { ref::fill<T>(hctx(), n, T(0.25), y); }, [&](T* y) { gpu::fill<T>(dctx(), n, T(0.25), y); },
      zero, true, 0);
  run(
      "copy", [&](T* y) { ref::copy<T>(hctx(), n, a.data(), y); }, [&](T* y) { gpu::copy<T>(dctx(), n, da.p, y); },
      zero, true, 0);
  run(
      "add", [&](T* y) { ref::add<T>(hctx(), n, a.data(), b.data(), y); },
      [&](T* y) { gpu::add<T>(dctx(), n, da.p, db.p, y); }, zero, true, 1e-6);
  run(
      "axpy", [&](T* y) { ref::axpy<T>(hctx(), n, T(-0.7), a.data(), y); },
      [&](T* y) { gpu::axpy<T>(dctx(), n, T(-0.7), da.p, y); }, init, false, 1e-5);
  run(
      "mul", [&](T* y) { ref::mul<T>(hctx(), n, a.data(), b.data(), y); },
      [&](T* y) { gpu::mul<T>(dctx(), n, da.p, db.p, y); }, zero, true, 1e-6);
  run(
      "add_bias", [&](T* y) { ref::add_bias<T>(hctx(), rows, cols, bias.data(), y); },
      [&](T* y) { gpu::add_bias<T>(dctx(), rows, cols, dbias.p, y); }, init, false, 1e-5);
  run(
      "gelu_forward", [&](T* y) { ref::gelu_forward<T>(hctx(), n, a.data(), y); },
      [&](T* y) { gpu::gelu_forward<T>(dctx(), n, da.p, y); }, zero, true, 1e-5);
  run(
      "gelu_backward", [&](T* y) { ref::gelu_backward<T>(hctx(), n, a.data(), b.data(), y); },
      [&](T* y) { gpu::gelu_backward<T>(dctx(), n, da.p, db.p, y); }, zero, true, 1e-5);
  const index_t width = cols / 2;  // gate_up is (rows, 2*width) inside a
  run(
      "swiglu_forward", [&](T* y) { ref::swiglu_forward<T>(hctx(), rows, width, a.data(), y); },
      [&](T* y) { gpu::swiglu_forward<T>(dctx(), rows, width, da.p, y); }, zero, true, 1e-5, rows * width);
  run(
      "swiglu_backward", [&](T* y) { ref::swiglu_backward<T>(hctx(), rows, width, a.data(), b.data(), y); },
      [&](T* y) { gpu::swiglu_backward<T>(dctx(), rows, width, da.p, db.p, y); }, zero, true, 1e-5, rows * 2 * width);

  // Accumulating column sum: both sides start from the same random dbias.
  auto grad0 = random_vec<T>(cols, 11);
  std::vector<T> want = grad0;
  ref::bias_grad<T>(hctx(), rows, cols, a.data(), want.data());
  dbuf<T> g(grad0);
  gpu::bias_grad<T>(dctx(), rows, cols, da.p, g.p);
  check_close_max(g.download(), want, 1e-5, "bias_grad");

  double ss_ref = ref::sum_squares<T>(hctx(), n, a.data()), ss = gpu::sum_squares<T>(dctx(), n, da.p);
  CHECK(ss == doctest::Approx(ss_ref).epsilon(1e-12));
}

TEST_CASE("bias_grad over many rows (split column reduction)") {
  using T = float;
  const index_t rows = 20000, cols = 70;
  auto dy = random_vec<T>(rows * cols, 12);
  std::vector<T> want(cols, T(0.5));
  ref::bias_grad<T>(hctx(), rows, cols, dy.data(), want.data());
  dbuf<T> ddy(dy), g(std::vector<T>(cols, T(0.5)));
  gpu::bias_grad<T>(dctx(), rows, cols, ddy.p, g.p);
  check_close_max(g.download(), want, 1e-5, "bias_grad long");
}

TEST_CASE_TEMPLATE("layer_norm and rms_norm forward and backward match cpu_ref", T, float, double) {
  const index_t rows = 29, cols = 700;
  auto x = random_vec<T>(rows * cols, 13, 2.0), w = random_vec<T>(cols, 14), bias = random_vec<T>(cols, 15);
  auto dy = random_vec<T>(rows * cols, 16);
  for (index_t i = 0; i < rows * cols; ++i) x[i] += T(0.3);  // a non-zero mean
  dbuf<T> dx_in(x), dw(w), db(bias), ddy(dy);
  const double rel = tol<T>(1e-5, 1e-12);

  std::vector<T> y(rows * cols), mean(rows), rstd(rows);
  ref::layer_norm_forward<T>(hctx(), rows, cols, x.data(), w.data(), bias.data(), 1e-5, y.data(), mean.data(),
                             rstd.data());
  auto gy = poisoned<T>(rows * cols), gmean = poisoned<T>(rows), grstd = poisoned<T>(rows);
  gpu::layer_norm_forward<T>(dctx(), rows, cols, dx_in.p, dw.p, db.p, 1e-5, gy.p, gmean.p, grstd.p);
  check_close(gy.download(), y, rel, "layer_norm y");
  check_close(gmean.download(), mean, rel, "layer_norm mean");
  check_close(grstd.download(), rstd, rel, "layer_norm rstd");

  std::vector<T> dx(rows * cols), gw0 = random_vec<T>(cols, 17), gb0 = random_vec<T>(cols, 18);
  std::vector<T> gw = gw0, gb = gb0;
  ref::layer_norm_backward<T>(hctx(), rows, cols, x.data(), w.data(), mean.data(), rstd.data(), dy.data(), dx.data(),
                              gw.data(), gb.data());
  dbuf<T> dmean(mean), drstd(rstd), ggw(gw0), ggb(gb0);
  auto gdx = poisoned<T>(rows * cols);
  gpu::layer_norm_backward<T>(dctx(), rows, cols, dx_in.p, dw.p, dmean.p, drstd.p, ddy.p, gdx.p, ggw.p, ggb.p);
  check_close(gdx.download(), dx, rel, "layer_norm dx");
  check_close_max(ggw.download(), gw, rel, "layer_norm dweight");
  check_close_max(ggb.download(), gb, rel, "layer_norm dbias");

  ref::rms_norm_forward<T>(hctx(), rows, cols, x.data(), w.data(), 1e-6, y.data(), rstd.data());
  gy.poison();
  grstd.poison();
  gpu::rms_norm_forward<T>(dctx(), rows, cols, dx_in.p, dw.p, 1e-6, gy.p, grstd.p);
  check_close(gy.download(), y, rel, "rms_norm y");
  check_close(grstd.download(), rstd, rel, "rms_norm rstd");

  gw = gw0;
  ref::rms_norm_backward<T>(hctx(), rows, cols, x.data(), w.data(), rstd.data(), dy.data(), dx.data(), gw.data());
  drstd.upload(rstd);
  ggw.upload(gw0);
  gdx.poison();
  gpu::rms_norm_backward<T>(dctx(), rows, cols, dx_in.p, dw.p, drstd.p, ddy.p, gdx.p, ggw.p);
  check_close(gdx.download(), dx, rel, "rms_norm dx");
  check_close_max(ggw.download(), gw, rel, "rms_norm dweight");
  // dx may be null (skipped): only dweight is accumulated.
  ggw.upload(gw0);
  gpu::rms_norm_backward<T>(dctx(), rows, cols, dx_in.p, dw.p, drstd.p, ddy.p, static_cast<T*>(nullptr), ggw.p);
  check_close_max(ggw.download(), gw, rel, "rms_norm dweight (no dx)");
}

TEST_CASE_TEMPLATE("embedding forward/backward match cpu_ref; a bad id throws", T, float, double) {
  const index_t vocab = 50, dim = 96, n = 300;
  std::vector<std::int32_t> ids(n);
  for (index_t t = 0; t < n; ++t) ids[t] = std::int32_t((t * 7 + 3) % vocab);  // many repeats
  auto table = random_vec<T>(vocab * dim, 19), dy = random_vec<T>(n * dim, 20), g0 = random_vec<T>(vocab * dim, 21);
  dbuf<std::int32_t> dids(ids);
  dbuf<T> dtable(table), ddy(dy), dg(g0);
  std::vector<T> y(n * dim), g = g0;
  ref::embedding_forward<T>(hctx(), n, dim, vocab, ids.data(), table.data(), y.data());
  auto gy = poisoned<T>(n * dim);
  gpu::embedding_forward<T>(dctx(), n, dim, vocab, dids.p, dtable.p, gy.p);
  check_close(gy.download(), y, 0, "embedding_forward");
  ref::embedding_backward<T>(hctx(), n, dim, ids.data(), dy.data(), g.data());
  gpu::embedding_backward<T>(dctx(), n, dim, dids.p, ddy.p, dg.p);
  check_close_max(dg.download(), g, 1e-5, "embedding_backward");

  ids[123] = std::int32_t(vocab);
  ids[200] = -5;
  dids.upload(ids);
  try {
    gpu::embedding_forward<T>(dctx(), n, dim, vocab, dids.p, dtable.p, gy.p);
    FAIL("no throw");
  } catch (const hyena::error& e) {
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("position 123") != std::string::npos);
  }
}

TEST_CASE_TEMPLATE("rotary forward/backward match cpu_ref; bad rot_dims throws", T, float, double) {
  const index_t batch = 2, seq = 37, heads = 3, head_dim = 16, row_stride = 3 * heads * head_dim, rot = 12;
  auto x = random_vec<T>(batch * seq * row_stride, 22);
  for (double sign : {1.0, -1.0}) {
    std::vector<T> want = x;
    dbuf<T> dx(x);
    if (sign > 0) {
      ref::rotary_forward<T>(hctx(), batch, seq, heads, head_dim, row_stride, rot, 10000.0, want.data());
      gpu::rotary_forward<T>(dctx(), batch, seq, heads, head_dim, row_stride, rot, 10000.0, dx.p);
    } else {
      ref::rotary_backward<T>(hctx(), batch, seq, heads, head_dim, row_stride, rot, 10000.0, want.data());
      gpu::rotary_backward<T>(dctx(), batch, seq, heads, head_dim, row_stride, rot, 10000.0, dx.p);
    }
    check_close(dx.download(), want, 1e-5, sign > 0 ? "rotary_forward" : "rotary_backward");
  }
  dbuf<T> dx(x);
  CHECK_THROWS_AS(gpu::rotary_forward<T>(dctx(), batch, seq, heads, head_dim, row_stride, 7, 10000.0, dx.p),
                  hyena::error);
  CHECK_THROWS_AS(gpu::rotary_forward<T>(dctx(), batch, seq, heads, head_dim, 10, 8, 10000.0, dx.p), hyena::error);
}

TEST_CASE_TEMPLATE("causal softmax forward/backward match cpu_ref, also in place", T, float, double) {
  const index_t batches = 3, seq = 70;
  const T scale = T(0.35);
  auto s = random_vec<T>(batches * seq * seq, 23, 4.0), dp = random_vec<T>(batches * seq * seq, 24);
  std::vector<T> p(s.size()), ds(s.size());
  ref::causal_softmax_forward<T>(hctx(), batches, seq, scale, s.data(), p.data());
  ref::causal_softmax_backward<T>(hctx(), batches, seq, scale, p.data(), dp.data(), ds.data());
  const double rel = tol<T>(1e-5, 1e-12);
  dbuf<T> dsc(s), ddp(dp);
  auto gp = poisoned<T>(s.size()), gds = poisoned<T>(s.size());
  gpu::causal_softmax_forward<T>(dctx(), batches, seq, scale, dsc.p, gp.p);
  check_close(gp.download(), p, rel, "softmax forward");
  gpu::causal_softmax_forward<T>(dctx(), batches, seq, scale, dsc.p, dsc.p);  // probs aliasing scores
  check_close(dsc.download(), p, rel, "softmax forward in place");
  gpu::causal_softmax_backward<T>(dctx(), batches, seq, scale, gp.p, ddp.p, gds.p);
  check_close(gds.download(), ds, rel, "softmax backward");
  gpu::causal_softmax_backward<T>(dctx(), batches, seq, scale, gp.p, ddp.p, ddp.p);  // dscores aliasing dprobs
  check_close(ddp.download(), ds, rel, "softmax backward in place");
}

TEST_CASE_TEMPLATE("short conv forward/backward match cpu_ref; bad sizes throw", T, float, double) {
  const index_t batch = 3, seq = 41, ch = 67, kernel = 4;
  auto x = random_vec<T>(batch * seq * ch, 25), w = random_vec<T>(ch * kernel, 26), b = random_vec<T>(ch, 27);
  auto dy = random_vec<T>(batch * seq * ch, 28), gw0 = random_vec<T>(ch * kernel, 29), gb0 = random_vec<T>(ch, 30);
  dbuf<T> dx_in(x), dw(w), db(b), ddy(dy), ggw(gw0), ggb(gb0);
  std::vector<T> y(x.size()), dx(x.size()), gw = gw0, gb = gb0;
  ref::short_conv_forward<T>(hctx(), batch, seq, ch, kernel, x.data(), w.data(), b.data(), y.data());
  ref::short_conv_backward<T>(hctx(), batch, seq, ch, kernel, x.data(), w.data(), dy.data(), dx.data(), gw.data(),
                              gb.data());
  auto gy = poisoned<T>(x.size()), gdx = poisoned<T>(x.size());
  gpu::short_conv_forward<T>(dctx(), batch, seq, ch, kernel, dx_in.p, dw.p, db.p, gy.p);
  gpu::short_conv_backward<T>(dctx(), batch, seq, ch, kernel, dx_in.p, dw.p, ddy.p, gdx.p, ggw.p, ggb.p);
  check_close(gy.download(), y, 1e-5, "short_conv y");
  check_close(gdx.download(), dx, 1e-5, "short_conv dx");
  check_close_max(ggw.download(), gw, 1e-5, "short_conv dweight");
  check_close_max(ggb.download(), gb, 1e-5, "short_conv dbias");
  // No bias: y is the taps alone.
  ref::short_conv_forward<T>(hctx(), batch, seq, ch, kernel, x.data(), w.data(), static_cast<const T*>(nullptr),
                             y.data());
  gy.poison();
  gpu::short_conv_forward<T>(dctx(), batch, seq, ch, kernel, dx_in.p, dw.p, static_cast<const T*>(nullptr), gy.p);
  check_close(gy.download(), y, 1e-5, "short_conv y (no bias)");
  CHECK_THROWS_AS(gpu::short_conv_forward<T>(dctx(), batch, seq, ch, 0, dx_in.p, dw.p, db.p, gy.p), hyena::error);
}

TEST_CASE_TEMPLATE("causal (FFT) conv forward/backward match cpu_ref", T, float, double) {
  const index_t batch = 2, ch = 24, h_stride = 130;
  for (index_t seq : {1, 100, 128}) {
    CAPTURE(seq);
    auto x = random_vec<T>(batch * seq * ch, 31), h = random_vec<T>(ch * h_stride, 32);
    auto dy = random_vec<T>(batch * seq * ch, 33), dh0 = random_vec<T>(ch * h_stride, 34);
    dbuf<T> dx_in(x), dh_f(h), ddy(dy), gdh(dh0);
    std::vector<T> y(x.size()), dx(x.size()), dh = dh0;
    ref::causal_conv_forward<T>(hctx(), batch, seq, ch, x.data(), h.data(), h_stride, y.data());
    ref::causal_conv_backward<T>(hctx(), batch, seq, ch, x.data(), h.data(), h_stride, dy.data(), dx.data(), dh.data());
    auto gy = poisoned<T>(x.size()), gdx = poisoned<T>(x.size());
    gpu::causal_conv_forward<T>(dctx(), batch, seq, ch, dx_in.p, dh_f.p, h_stride, gy.p);
    gpu::causal_conv_backward<T>(dctx(), batch, seq, ch, dx_in.p, dh_f.p, h_stride, ddy.p, gdx.p, gdh.p);
    const double rel = tol<T>(1e-5, 1e-10);
    check_close_max(gy.download(), y, rel, "causal_conv y");
    check_close_max(gdx.download(), dx, rel, "causal_conv dx");
    // dh: only [0, seq) of each row changes; the rest must keep its initial values.
    check_close_max(gdh.download(), dh, rel, "causal_conv dh");
    // Each gradient alone (the other pointer null).
    gdx.poison();
    gpu::causal_conv_backward<T>(dctx(), batch, seq, ch, dx_in.p, dh_f.p, h_stride, ddy.p, gdx.p,
                                 static_cast<T*>(nullptr));
    check_close_max(gdx.download(), dx, rel, "causal_conv dx alone");
    gdh.upload(dh0);
    gpu::causal_conv_backward<T>(dctx(), batch, seq, ch, dx_in.p, dh_f.p, h_stride, ddy.p, static_cast<T*>(nullptr),
                                 gdh.p);
    check_close_max(gdh.download(), dh, rel, "causal_conv dh alone");
  }
  dbuf<T> a(std::vector<T>(10, T(1)));
  CHECK_THROWS_AS(gpu::causal_conv_forward<T>(dctx(), 1, 10, 1, a.p, a.p, 5, a.p), hyena::error);
}

TEST_CASE_TEMPLATE("filter ops match cpu_ref", T, float, double) {
  const index_t rows = 53, cols = 40, seq = 53;
  auto x = random_vec<T>(rows * cols, 35, 3.0), freq = random_vec<T>(cols, 36, 2.0),
       dy = random_vec<T>(rows * cols, 37);
  auto f0 = random_vec<T>(cols, 38);
  dbuf<T> dxin(x), dfreq(freq), ddy(dy), gf(f0);
  std::vector<T> y(x.size()), dx(x.size()), gfr = f0;
  ref::sin_forward<T>(hctx(), rows, cols, freq.data(), x.data(), y.data());
  ref::sin_backward<T>(hctx(), rows, cols, freq.data(), x.data(), dy.data(), dx.data(), gfr.data());
  auto gy = poisoned<T>(x.size());
  gpu::sin_forward<T>(dctx(), rows, cols, dfreq.p, dxin.p, gy.p);
  check_close(gy.download(), y, 1e-5, "sin_forward");
  gpu::sin_backward<T>(dctx(), rows, cols, dfreq.p, dxin.p, ddy.p, ddy.p, gf.p);  // dx aliasing dy
  check_close(ddy.download(), dx, 1e-5, "sin_backward dx (in place)");
  check_close_max(gf.download(), gfr, 1e-5, "sin_backward dfreq");

  const index_t h_stride = seq + 9;
  std::vector<T> h(cols * h_stride, T(7)), dk(seq * cols);
  ref::decay_window_forward<T>(hctx(), seq, cols, 0.01, 0.3, 1.5, x.data(), h.data(), h_stride);
  dbuf<T> gh(std::vector<T>(cols * h_stride, T(7)));
  gpu::decay_window_forward<T>(dctx(), seq, cols, 0.01, 0.3, 1.5, dxin.p, gh.p, h_stride);
  check_close(gh.download(), h, 1e-5, "decay_window_forward");
  ref::decay_window_backward<T>(hctx(), seq, cols, 0.01, 0.3, 1.5, h.data(), h_stride, dk.data());
  auto gdk = poisoned<T>(seq * cols);
  gpu::decay_window_backward<T>(dctx(), seq, cols, 0.01, 0.3, 1.5, gh.p, h_stride, gdk.p);
  check_close(gdk.download(), dk, 1e-5, "decay_window_backward");
  CHECK_THROWS_AS(gpu::decay_window_forward<T>(dctx(), seq, cols, 0.01, 0.3, 1.5, dxin.p, gh.p, seq - 1), hyena::error);

  auto y0 = random_vec<T>(rows * cols, 39);
  std::vector<T> ya = y0, sg = f0;
  ref::scale_add<T>(hctx(), rows, cols, freq.data(), x.data(), ya.data());
  ref::scale_grad<T>(hctx(), rows, cols, x.data(), y0.data(), sg.data());
  dbuf<T> gya(y0), gsg(f0);
  gpu::scale_add<T>(dctx(), rows, cols, dfreq.p, dxin.p, gya.p);
  check_close(gya.download(), ya, 1e-5, "scale_add");
  dbuf<T> dy0(y0);
  gpu::scale_grad<T>(dctx(), rows, cols, dxin.p, dy0.p, gsg.p);
  check_close_max(gsg.download(), sg, 1e-5, "scale_grad");

  std::vector<T> dst(rows * 25, T(3));
  ref::copy_strided<T>(hctx(), rows, 17, x.data() + 5, cols, dst.data(), 25);
  dbuf<T> gdst(std::vector<T>(rows * 25, T(3)));
  gpu::copy_strided<T>(dctx(), rows, 17, dxin.p + 5, cols, gdst.p, 25);
  check_close(gdst.download(), dst, 0, "copy_strided");
}

TEST_CASE_TEMPLATE("cross entropy, KL and MSE match cpu_ref", T, float, double) {
  const index_t rows = 19, vocab = 3001;
  auto logits = random_vec<T>(rows * vocab, 40, 5.0), teacher = random_vec<T>(rows * vocab, 41, 5.0);
  std::vector<std::int32_t> targets(rows);
  for (index_t r = 0; r < rows; ++r) targets[r] = std::int32_t((r * 977 + 11) % vocab);
  targets[4] = hyena::backend::ignore_target;
  targets[rows - 1] = hyena::backend::ignore_target;
  dbuf<T> dl(logits), dt(teacher);
  dbuf<std::int32_t> dtg(targets);
  const double rel = tol<T>(1e-5, 1e-12);

  CHECK(gpu::count_targets(dctx(), rows, vocab, dtg.p) == rows - 2);
  std::vector<T> losses(rows), dlog(rows * vocab);
  double want =
      ref::cross_entropy<T>(hctx(), rows, vocab, logits.data(), targets.data(), losses.data(), dlog.data(), T(0.5));
  auto gl = poisoned<T>(rows), gd = poisoned<T>(rows * vocab);
  double got = gpu::cross_entropy<T>(dctx(), rows, vocab, dl.p, dtg.p, gl.p, gd.p, T(0.5));
  CHECK(got == doctest::Approx(want).epsilon(1e-9));
  check_close(gl.download(), losses, rel, "cross_entropy losses");
  check_close(gd.download(), dlog, rel, "cross_entropy dlogits");
  // Null outputs: only the sum.
  CHECK(gpu::cross_entropy<T>(dctx(), rows, vocab, dl.p, dtg.p, static_cast<T*>(nullptr), static_cast<T*>(nullptr),
                              T(1)) == doctest::Approx(want).epsilon(1e-9));

  want = ref::kl_divergence<T>(hctx(), rows, vocab, teacher.data(), logits.data(), T(2), losses.data(), dlog.data(),
                               T(0.25));
  gl.poison();
  gd.poison();
  got = gpu::kl_divergence<T>(dctx(), rows, vocab, dt.p, dl.p, T(2), gl.p, gd.p, T(0.25));
  CHECK(got == doctest::Approx(want).epsilon(1e-9));
  check_close(gl.download(), losses, rel, "kl losses");
  check_close(gd.download(), dlog, rel, "kl dstudent");
  // Identical rows: exactly zero loss (clamped), zero gradient.
  CHECK(gpu::kl_divergence<T>(dctx(), rows, vocab, dl.p, dl.p, T(1), gl.p, gd.p, T(1)) == doctest::Approx(0.0));
  CHECK_THROWS_AS(gpu::kl_divergence<T>(dctx(), rows, vocab, dt.p, dl.p, T(0), gl.p, gd.p, T(1)), hyena::error);

  std::vector<T> da(rows * vocab);
  want = ref::mse<T>(hctx(), rows * vocab, logits.data(), teacher.data(), da.data(), T(0.1));
  gd.poison();
  got = gpu::mse<T>(dctx(), rows * vocab, dl.p, dt.p, gd.p, T(0.1));
  CHECK(got == doctest::Approx(want).epsilon(1e-9));
  check_close(gd.download(), da, rel, "mse da");

  targets[7] = std::int32_t(vocab);
  dtg.upload(targets);
  try {
    gpu::cross_entropy<T>(dctx(), rows, vocab, dl.p, dtg.p, gl.p, gd.p, T(1));
    FAIL("no throw");
  } catch (const hyena::error& e) {
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("row 7") != std::string::npos);
  }
}
