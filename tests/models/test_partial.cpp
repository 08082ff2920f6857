// causal_lm's partial passes: forward_to(layer) and d_hidden() + backward_from(layer).
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/llama.hpp>
#include <hyena/models/student.hpp>

#include <cmath>
#include <limits>

#include "../support/model_check.hpp"

using namespace hyena;

namespace {
using llama_t = models::llama<backend::cpu>;

llama_t make(std::uint64_t seed) {
  llama_t m(models::llama_config(50, 16, 3, 4, 2, 32, 12));
  rng r(seed);
  m.init(r);
  return m;
}

std::vector<float> grads_of(llama_t& m) {
  auto g = m.gradient_arena().flat();
  return std::vector<float>(g.data, g.data + g.numel());
}
}  // namespace

TEST_CASE("forward_to(l) is block l's input of the whole forward, in both modes, and runs nothing above") {
  auto m = make(1);
  backend::host_context ctx(1);
  auto tokens = testing::random_tokens(2, 12, 50, 3);
  m.reserve(2, 12, models::mode::train);
  m.forward(ctx, tokens.v());
  std::vector<std::vector<float>> inputs;
  for (index_t l = 0; l < 3; ++l) {
    auto a = m.activation(l, models::hook_point::block_input);
    inputs.emplace_back(a.data, a.data + a.numel());
  }
  // Poison everything above block 1 (block 2, final norm, unembedding): forward_to(2) must not care.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  m.for_each_parameter([&](const std::string& name, view<float>& p, view<float>&) {
    if (name.rfind("blocks.2.", 0) == 0 || name.rfind("final_norm.", 0) == 0 || name.rfind("unembed.", 0) == 0)
      std::fill(p.data, p.data + p.numel(), nan);
  });
  for (auto mode : {models::mode::train, models::mode::infer}) {
    m.reserve(2, 12, mode);
    for (index_t l = 0; l <= 2; ++l) {
      auto x = m.forward_to(ctx, tokens.v(), l);
      REQUIRE(x.numel() == index_t(inputs[std::size_t(l)].size()));
      CHECK(std::equal(x.data, x.data + x.numel(), inputs[std::size_t(l)].begin()));
    }
  }
  CHECK_THROWS_AS(m.forward_to(ctx, tokens.v(), 4), hyena::error);
}

TEST_CASE("backward_from(l) gives the gradients a loss on block l's output gets through the whole model") {
  auto m = make(2);
  backend::host_context ctx(1);
  auto tokens = testing::random_tokens(2, 12, 50, 4);
  rng r(9);
  tensor<float> d({2, 12, 16});
  fill_normal(d.v(), r);
  const index_t l = 1;
  // Reference: whole forward and backward, dlogits 0, the gradient added at block l's output.
  m.reserve(2, 12, models::mode::train);
  m.zero_grad();
  m.forward(ctx, tokens.v());
  std::fill(m.dlogits().data, m.dlogits().data + m.dlogits().numel(), 0.0f);
  models::hooks<float> h;
  h.on_backward = [&](index_t layer, models::hook_point p, view<float> g) {
    if (layer == l && p == models::hook_point::block_output)
      for (index_t i = 0; i < g.numel(); ++i) g.data[i] += d.data()[i];
  };
  m.backward(ctx, &h);
  auto whole = grads_of(m);
  // Partial: forward to block l's output, backward from it.
  m.zero_grad();
  m.forward_to(ctx, tokens.v(), l + 1);
  std::copy(d.data(), d.data() + d.numel(), m.d_hidden().data);
  m.backward_from(ctx, l);
  auto partial = grads_of(m);
  REQUIRE(partial.size() == whole.size());
  index_t nonzero = 0;
  for (std::size_t i = 0; i < whole.size(); ++i) {
    CHECK(testing::close(partial[i], whole[i], 1e-5, 1e-6));
    nonzero += partial[i] != 0;
  }
  CHECK(nonzero > 100);
  // down_to = l: only block l gets gradients (no lower block, no embedding).
  m.zero_grad();
  m.forward_to(ctx, tokens.v(), l + 1);
  std::copy(d.data(), d.data() + d.numel(), m.d_hidden().data);
  m.backward_from(ctx, l, l);
  m.for_each_parameter([&](const std::string& name, view<float>&, view<float>& g) {
    const bool mine = name.rfind("blocks.1.", 0) == 0;
    const bool any = std::any_of(g.data, g.data + g.numel(), [](float v) { return v != 0; });
    CHECK_MESSAGE(any == mine, name);
  });
  CHECK_THROWS_AS(m.backward_from(ctx, 3), hyena::error);
}
