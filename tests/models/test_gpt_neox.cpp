#include <hyena/models/gpt_neox.hpp>

#include "../support/block_golden.hpp"
#include "../support/model_check.hpp"

using namespace hyena;
using models::mode;

namespace {
models::model_config tiny() {
  auto c = models::gpt_neox_config(13, 8, 2, 2, 16, 6);
  c.rotary_pct = 0.5;
  return c;
}
}  // namespace

TEST_CASE("gpt_neox: whole-model gradients match central differences") {
  testing::check_model_gradients<models::gpt_neox<backend::cpu_ref, double>>(tiny(), 2, 5);
}

TEST_CASE("gpt_neox: tied embeddings and the sequential residual form") {
  auto c = tiny();
  c.tie_embeddings = true;
  c.parallel_residual = false;
  testing::check_model_gradients<models::gpt_neox<backend::cpu_ref, double>>(c, 1, 4);
}

TEST_CASE("gpt_neox: an extra gradient at a mixer output through the hook is exact") {
  testing::check_model_gradients<models::gpt_neox<backend::cpu_ref, double>>(tiny(), 1, 4, /*with_hook=*/true);
}

TEST_CASE("gpt_neox: cpu matches cpu_ref") {
  auto c = models::gpt_neox_config(37, 32, 2, 4, 64, 16);
  testing::check_model_parity<models::gpt_neox<backend::cpu>, models::gpt_neox<backend::cpu_ref>>(c, 2, 16);
}

TEST_CASE("gpt_neox: a layer keeps only what backward needs from forward; backward's scratch is shared") {
  // (batch, seq) = (2, 16), hidden 32, 4 heads, MLP 64: every tensor a whole number of the arena's
  // 16-float alignment, so the per-layer growth is an exact sum.
  const index_t B = 2, L = 16, H = 32, heads = 4, I = 64, rows = B * L;
  const auto bytes_with = [&](index_t layers) {
    models::gpt_neox<backend::cpu> m(models::gpt_neox_config(37, H, layers, heads, I, L));
    m.reserve(B, L, mode::train);
    return m.activation_bytes();
  };
  const index_t kept = rows * H         // the block's input (the residual stream)
                       + 2 * 2 * rows   // the two layer norms' mean and rstd
                       + 4 * rows * H   // norm1_out, mixer_out, norm2_out, mlp_out
                       + rows * 3 * H   // attention's q, k, v
                       + B * heads * L  // its log-sum-exp rows
                       + rows * H       // its heads before the output projection
                       + 2 * rows * I;  // the MLP's pre-activation and GELU output
  // Backward's gradient buffers (block::backward's three, the MLP's and attention's) live in
  // the context, one set for all layers (nn/layer.hpp's context_scratch), not here.
  CHECK(bytes_with(3) - bytes_with(2) == kept * sizeof(float));
}

TEST_CASE("gpt_neox: inference mode gives the training-mode logits and fires every hook") {
  auto c = tiny();
  models::gpt_neox<backend::cpu> train(c), infer(c);
  rng r(3);
  train.init(r);
  testing::nudge_parameters(train, 4);
  std::copy(train.parameter_arena().flat().data, train.parameter_arena().flat().data + train.parameter_arena().size(),
            infer.parameter_arena().flat().data);
  auto tokens = testing::random_tokens(2, 6, c.vocab, 5);
  backend::host_context ctx;
  train.reserve(2, 6, mode::train);
  infer.reserve(2, 6, mode::infer);
  CHECK(infer.activation_bytes() < train.activation_bytes());
  int fired = 0;
  std::vector<float> mixer0;
  models::hooks<float> h;
  h.on_forward = [&](index_t l, models::hook_point p, view<const float> a) {
    ++fired;
    if (l == 0 && p == models::hook_point::mixer_output) mixer0.assign(a.data, a.data + a.numel());
  };
  auto a = train.forward(ctx, tokens.v());
  auto b = infer.forward(ctx, tokens.v(), &h);
  CHECK(fired == 3 * c.layers);
  for (index_t i = 0; i < a.numel(); ++i) REQUIRE(a.data[i] == doctest::Approx(b.data[i]).epsilon(1e-6));
  auto stored = train.activation(0, models::hook_point::mixer_output);
  REQUIRE(mixer0.size() == std::size_t(stored.numel()));
  for (index_t i = 0; i < stored.numel(); ++i) CHECK(mixer0[i] == doctest::Approx(stored.data[i]).epsilon(1e-6));
}

TEST_CASE("gpt_neox: one block matches the independent PyTorch implementation") {
  auto fx = testing::fixture::load("gpt_neox_block.json");
  models::model_config c = models::gpt_neox_config(16, fx.meta["hidden"], 1, fx.meta["heads"], fx.meta["intermediate"],
                                                   fx.meta["seq"]);
  c.rotary_pct = fx.meta["rotary_pct"];
  testing::check_block_against_fixture<models::gpt_neox_block<backend::cpu, float>>(fx, c);
}

TEST_CASE("gpt_neox: bad input throws hyena::error") {
  auto c = tiny();
  models::gpt_neox<backend::cpu> m(c);
  backend::host_context ctx;
  auto too_long = testing::random_tokens(1, c.max_seq + 1, c.vocab, 1);
  CHECK_THROWS_AS(m.forward(ctx, too_long.v()), hyena::error);
  auto bad = testing::random_tokens(1, 4, c.vocab, 1);
  bad.data()[2] = static_cast<std::int32_t>(c.vocab);
  CHECK_THROWS_AS(m.forward(ctx, bad.v()), hyena::error);
  auto odd = c;
  odd.heads = 3;
  CHECK_THROWS_AS(models::gpt_neox<backend::cpu>{odd}, hyena::error);
}
