// models/decoder.hpp: incremental decoding equals the full forward at every position, for every
// architecture and mixer; the modal (recurrent) form of Hyena filters; generate's decode paths.
#include <hyena/models/decoder.hpp>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/llama.hpp>
#include <hyena/models/modal.hpp>
#include <hyena/models/student.hpp>
#include <hyena/train/generate.hpp>

#include <cmath>
#include <complex>

#include "../support/model_check.hpp"

using namespace hyena;

namespace {

template <class M>
M make(const typename M::config_type& c, std::uint64_t seed, double scale = 4) {
  M m(c);
  rng r(seed);
  m.init(r);
  // Larger weights than the init so logits are far from uniform and mistakes show.
  auto flat = m.parameter_arena().flat();
  for (index_t i = 0; i < flat.numel(); ++i) flat.data[i] *= float(scale);
  return m;
}

// Max over positions of max|decoded - full| / max|full| for rows decoded side by side: each
// row's prompt goes through prefill, then `steps` tokens one at a time; every row's logits at
// every position are compared with a full forward over that row's prefix.
template <class M>
double worst_relative_gap(M& m, index_t rows, index_t prompt, index_t steps, std::uint64_t seed) {
  const auto& c = m.config();
  backend::host_context ctx(2);
  rng r(seed);
  const index_t total = prompt + steps;
  std::vector<std::vector<std::int32_t>> seqs(static_cast<std::size_t>(rows));
  for (auto& s : seqs)
    for (index_t i = 0; i < total; ++i) s.push_back(std::int32_t(r.below(c.vocab)));
  models::decoder<M> dec(m, ctx, rows, total);
  tensor<std::int32_t> p(shape{rows, prompt});
  for (index_t k = 0; k < rows; ++k) std::copy(seqs[k].begin(), seqs[k].begin() + prompt, p.data() + k * prompt);
  std::vector<float> got(std::size_t(rows * c.vocab));
  auto keep = [&](const float* l) { std::copy(l, l + rows * c.vocab, got.begin()); };
  double worst = 0;
  for (index_t t = prompt - 1; t < total; ++t) {
    if (t == prompt - 1) keep(dec.prefill(ctx, p.v()));
    else {
      std::vector<std::int32_t> feed;
      for (index_t k = 0; k < rows; ++k) feed.push_back(seqs[k][t]);
      keep(dec.step(ctx, feed));
    }
    for (index_t k = 0; k < rows; ++k) {
      tensor<std::int32_t> ids(shape{1, t + 1});
      std::copy(seqs[k].begin(), seqs[k].begin() + t + 1, ids.data());
      m.reserve(1, t + 1, models::mode::infer);
      auto full = m.forward(ctx, ids.v());
      double gap = 0, top = 0;
      for (index_t v = 0; v < c.vocab; ++v) {
        gap = std::max(gap, std::abs(double(full.data[t * c.vocab + v]) - double(got[k * c.vocab + v])));
        top = std::max(top, std::abs(double(full.data[t * c.vocab + v])));
      }
      worst = std::max(worst, gap / top);
    }
    CHECK(dec.position(0) == t + 1);
  }
  return worst;
}

}  // namespace

TEST_CASE("decoder: incremental logits equal the full forward at every position (attention teachers)") {
  // Prompts and lengths that cross the fused attention's 64-query blocks.
  auto neox_c = models::gpt_neox_config(37, 32, 2, 4, 64, 160);
  neox_c.rotary_pct = 0.25;  // partial rotary, parallel residual (GPT-NeoX / Pythia)
  auto neox = make<models::gpt_neox<backend::cpu>>(neox_c, 1);
  for (auto run : {std::pair<index_t, index_t>{1, 70}, {63, 3}, {64, 2}, {65, 70}}) {
    const index_t prompt = run.first, steps = run.second;  // not a structured binding: INFO captures
    INFO("gpt_neox prompt ", prompt, " steps ", steps);
    CHECK(worst_relative_gap(neox, 2, prompt, steps, 3) < 1e-5);
  }
  auto seq_c = neox_c;
  seq_c.parallel_residual = false;  // GPT-NeoX with use_parallel_residual = false
  auto seq = make<models::gpt_neox<backend::cpu>>(seq_c, 2);
  CHECK(worst_relative_gap(seq, 2, 30, 40, 4) < 1e-5);
  auto llama = make<models::llama<backend::cpu>>(models::llama_config(41, 48, 2, 6, 2, 64, 160), 3);  // GQA
  CHECK(worst_relative_gap(llama, 3, 65, 12, 5) < 1e-5);
  CHECK(worst_relative_gap(llama, 1, 1, 130, 6) < 1e-5);
}

TEST_CASE("decoder: incremental logits equal the full forward at every position (Hyena students)") {
  // 80 channels cross the step op's 64-channel blocks; lengths cross FFT sizes (2L: 64, 128, 256).
  models::lm_config<nn::hyena_hparams> c(models::gpt_neox_config(29, 80, 2, 4, 96, 160), {.filter_order = 16});
  auto s = make<models::hyena_student<models::gpt_neox<backend::cpu>>>(c, 7, 2);
  for (auto run : {std::pair<index_t, index_t>{1, 40}, {31, 4}, {32, 40}, {100, 40}}) {
    const index_t prompt = run.first, steps = run.second;
    INFO("hyena prompt ", prompt, " steps ", steps);
    CHECK(worst_relative_gap(s, 2, prompt, steps, 8) < 1e-5);
  }
  models::lm_config<nn::hyena_hparams> c3(models::llama_config(23, 32, 2, 4, 2, 48, 96),
                                          {.order = 3, .filter_order = 16, .short_filter = 4});
  auto s3 = make<models::hyena_student<models::llama<backend::cpu>>>(c3, 9, 2);
  CHECK(worst_relative_gap(s3, 2, 17, 50, 10) < 1e-5);
  models::lm_config<nn::hyena_hparams> cr(models::llama_config(23, 32, 2, 4, 2, 48, 96),
                                          {.filter_order = 16, .rank = 3});
  auto sr = make<models::hyena_student<models::llama<backend::cpu>>>(cr, 11, 2);
  CHECK(worst_relative_gap(sr, 2, 17, 50, 10) < 1e-5);
}

TEST_CASE("decoder: reset restarts one row while others go on; positions are bounded") {
  auto m = make<models::llama<backend::cpu>>(models::llama_config(17, 16, 2, 4, 2, 24, 24), 11);
  backend::host_context ctx(1);
  models::decoder<decltype(m)> dec(m, ctx, 2, 8);
  std::vector<std::int32_t> a{3, 5, 7, 9, 2, 4}, b{1, 1, 6, 6, 8, 2};
  // Row 1 first decodes two other tokens, then restarts: it must forget them.
  dec.step(ctx, std::vector<std::int32_t>{a[0], 13});
  dec.step(ctx, std::vector<std::int32_t>{a[1], 14});
  dec.reset(ctx, 1);
  std::vector<float> last;
  for (std::size_t t = 0; t < 4; ++t) {
    const float* l = dec.step(ctx, std::vector<std::int32_t>{a[t + 2], b[t]});
    last.assign(l + 17, l + 34);
  }
  CHECK(dec.position(0) == 6);
  CHECK(dec.position(1) == 4);
  tensor<std::int32_t> ids(shape{1, 4});
  std::copy(b.begin(), b.begin() + 4, ids.data());
  m.reserve(1, 4, models::mode::infer);
  auto full = m.forward(ctx, ids.v());
  for (index_t v = 0; v < 17; ++v) CHECK(std::abs(full.data[3 * 17 + v] - last[std::size_t(v)]) < 1e-4);
  dec.step(ctx, std::vector<std::int32_t>{1, 1});
  dec.step(ctx, std::vector<std::int32_t>{1, 1});
  CHECK_THROWS_WITH_AS(dec.step(ctx, std::vector<std::int32_t>{1, 1}), doctest::Contains("full"), error);
  CHECK_THROWS_AS(dec.step(ctx, std::vector<std::int32_t>{1}), error);  // one token per row
  CHECK_THROWS_AS(dec.step(ctx, std::vector<std::int32_t>{17, 1}), error);
}

TEST_CASE("generate: exact decoding gives recomputation's greedy text, also past max_seq") {
  backend::host_context ctx(1);
  auto neox_c = models::gpt_neox_config(31, 32, 2, 4, 64, 40);
  neox_c.rotary_pct = 0.5;
  auto t = make<models::gpt_neox<backend::cpu>>(neox_c, 12, 3);
  models::lm_config<nn::hyena_hparams> hc(neox_c, {.filter_order = 16});
  auto s = make<models::hyena_student<models::gpt_neox<backend::cpu>>>(hc, 13, 2);
  auto check = [&](auto& m) {
    for (index_t n : {10, 90}) {  // within and past max_seq (40)
      train::generate_options<float> exact, recompute;
      exact.decode = train::decode_mode::exact;
      recompute.decode = train::decode_mode::recompute;
      std::vector<std::int32_t> streamed;
      exact.on_token = [&](std::int32_t tok) { streamed.push_back(tok); };
      auto a = train::generate(m, ctx, {1, 2, 3}, n, train::sampling{.temperature = 0}, exact);
      auto b = train::generate(m, ctx, {1, 2, 3}, n, train::sampling{.temperature = 0}, recompute);
      CHECK(a == b);
      CHECK(std::vector<std::int32_t>(a.begin() + 3, a.end()) == streamed);
      // Sampling draws the same tokens too (same logits up to rounding, same rng).
      auto sa = train::generate(m, ctx, {4}, n, train::sampling{.temperature = 0.9, .seed = 5}, exact);
      auto sb = train::generate(m, ctx, {4}, n, train::sampling{.temperature = 0.9, .seed = 5}, recompute);
      CHECK(sa == sb);
    }
  };
  check(t);
  check(s);
}

TEST_CASE("modal fit: a filter that is a sum of d decaying modes is recovered; error falls as d grows") {
  // h[t] = Re sum_k R_k lambda_k^t with 3 conjugate pairs (6 modes) and one real pole (7 modes).
  const index_t L = 300;
  std::vector<std::complex<double>> lam{{0.9, 0.2}, {0.9, -0.2}, {0.7, 0.5}, {0.7, -0.5}, {-0.5, 0.1}, {-0.5, -0.1}, {0.95, 0}};
  std::vector<std::complex<double>> res{{1, 0.5}, {1, -0.5}, {-0.3, 0.2}, {-0.3, -0.2}, {0.2, 0}, {0.2, 0}, {0.4, 0}};
  std::vector<double> h(L, 0.0);
  for (std::size_t k = 0; k < lam.size(); ++k) {
    std::complex<double> p = 1;
    for (index_t t = 0; t < L; ++t, p *= lam[k]) h[std::size_t(t)] += (res[k] * p).real();
  }
  auto fit = nn::fit_modes(h.data(), L, 7);
  CHECK(fit.error < 1e-12);
  double max_err = 0;
  std::vector<std::complex<double>> pw(7, 1.0);
  for (index_t t = 0; t < L; ++t) {
    double v = 0;
    for (std::size_t k = 0; k < 7; ++k) v += (fit.residues[k] * pw[k]).real(), pw[k] *= fit.poles[k];
    max_err = std::max(max_err, std::abs(v - h[std::size_t(t)]));
  }
  CHECK(max_err < 1e-6);
  for (auto& p : fit.poles) CHECK(std::abs(p) < 1.0);

  // A trained-looking filter (an initialised implicit filter): the error falls as d grows.
  models::lm_config<nn::hyena_hparams> c(models::gpt_neox_config(16, 16, 1, 2, 32, 256), {.filter_order = 32});
  auto m = make<models::hyena_student<models::gpt_neox<backend::cpu>>>(c, 21, 1);
  backend::host_context ctx(1);
  double previous = 1e9;
  for (index_t d : {2, 4, 8, 16, 32}) {
    auto form = models::fit_modal_form(m, ctx, {.modes = d});
    INFO("modes ", d, ": relative filter error ", form.filter_error[0]);
    CHECK(form.filter_error[0] < previous);
    previous = form.filter_error[0];
  }
  CHECK(previous < 1e-3);
}

TEST_CASE("modal decoding: logits track the exact path within a bound set by the filter error") {
  models::lm_config<nn::hyena_hparams> c(models::gpt_neox_config(29, 32, 2, 4, 64, 128), {.filter_order = 16});
  auto m = make<models::hyena_student<models::gpt_neox<backend::cpu>>>(c, 31, 2);
  backend::host_context ctx(1);
  rng r(4);
  std::vector<std::int32_t> toks;
  for (int i = 0; i < 120; ++i) toks.push_back(std::int32_t(r.below(29)));
  tensor<std::int32_t> prompt(shape{1, 20});
  std::copy(toks.begin(), toks.begin() + 20, prompt.data());
  double previous = 1e9;
  for (index_t d : {4, 16, 32}) {
    auto form = models::fit_modal_form(m, ctx, {.modes = d});
    models::decoder<decltype(m)> exact(m, ctx, 1, 128), modal(m, ctx, 1, 128, &form);
    double worst = 0, top = 0;
    auto compare = [&](const float* a, const float* b) {
      for (index_t v = 0; v < 29; ++v)
        worst = std::max(worst, double(std::abs(a[v] - b[v]))), top = std::max(top, double(std::abs(a[v])));
    };
    std::vector<float> e(29);
    const float* le = exact.prefill(ctx, prompt.v());
    std::copy(le, le + 29, e.begin());
    compare(e.data(), modal.prefill(ctx, prompt.v()));
    for (std::size_t t = 20; t < toks.size(); ++t) {
      le = exact.step(ctx, std::span(&toks[t], 1));
      std::copy(le, le + 29, e.begin());
      compare(e.data(), modal.step(ctx, std::span(&toks[t], 1)));
    }
    double err = 0;
    for (double f : form.filter_error) err = std::max(err, f);
    INFO("modes ", d, ": filter error ", err, ", worst logit gap ", worst / top, " of the largest logit");
    // The documented bound (docs/guide.md): relative logit gap <= 10 sqrt(filter error).
    CHECK(worst / top <= 10 * std::sqrt(err) + 1e-5);
    CHECK(worst / top < previous);
    previous = worst / top;
  }
  {  // Rank 3: every branch's filter gets its own modes.
    models::lm_config<nn::hyena_hparams> cr(models::gpt_neox_config(29, 32, 2, 4, 64, 128),
                                            {.filter_order = 16, .rank = 3});
    auto mr = make<models::hyena_student<models::gpt_neox<backend::cpu>>>(cr, 33, 2);
    auto form = models::fit_modal_form(mr, ctx, {.modes = 32});
    models::decoder<decltype(mr)> exact(mr, ctx, 1, 128), modal(mr, ctx, 1, 128, &form);
    double worst = 0, top = 0, err = 0;
    const float* le = exact.prefill(ctx, prompt.v());
    std::vector<float> e(le, le + 29);
    const float* lm = modal.prefill(ctx, prompt.v());
    for (std::size_t t = 20;; ++t) {
      for (index_t v = 0; v < 29; ++v)
        worst = std::max(worst, double(std::abs(e[std::size_t(v)] - lm[v]))), top = std::max(top, double(std::abs(e[std::size_t(v)])));
      if (t == toks.size()) break;
      le = exact.step(ctx, std::span(&toks[t], 1));
      e.assign(le, le + 29);
      lm = modal.step(ctx, std::span(&toks[t], 1));
    }
    for (double f : form.filter_error) err = std::max(err, f);
    INFO("rank 3, 32 modes: filter error ", err, ", worst logit gap ", worst / top);
    CHECK(form.filter_error.size() == 2);
    CHECK(worst / top <= 10 * std::sqrt(err) + 1e-5);
  }
  // Modal decoding has no position limit.
  auto form = models::fit_modal_form(m, ctx, {.modes = 8});
  models::decoder<decltype(m)> modal(m, ctx, 1, 4, &form);
  modal.prefill(ctx, prompt.v());
  for (int i = 0; i < 300; ++i) modal.step(ctx, std::span(&toks[std::size_t(i % 100)], 1));
  CHECK(modal.position(0) == 320);
}
