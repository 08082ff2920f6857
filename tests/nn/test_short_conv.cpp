#include <hyena/nn/hyena.hpp>
#include <hyena/nn/short_conv.hpp>

#include "../support/layer_check.hpp"

using namespace hyena;

TEST_CASE("short_conv: gradients match central differences") {
  testing::check_layer_gradients<nn::short_conv>({.channels = 5, .kernel = 3}, 2, 6);
  testing::check_layer_gradients<nn::short_conv>({.channels = 3, .kernel = 4}, 1, 2);  // seq < kernel
}

TEST_CASE("short_conv: cpu matches cpu_ref") {
  testing::check_layer_parity<nn::short_conv>({.channels = 37, .kernel = 3}, 3, 19);
}

TEST_CASE("short_conv: a Hyena operator's short conv covers every projected channel") {
  model_config m;
  m.hidden = 16;
  auto c = nn::hyena_config::from(m, {.order = 3, .short_filter = 5}).short_conv();
  CHECK(c.channels == 64);
  CHECK(c.kernel == 5);
}

TEST_CASE("short_conv: causal (output t ignores inputs after t)") {
  testing::layer_rig<nn::short_conv, backend::cpu, float> rig({.channels = 4, .kernel = 3}, 1, 8);
  testing::randomize(rig, 3);
  rig.forward();
  std::vector<float> before(rig.y.data(), rig.y.data() + rig.y.numel());
  for (index_t c = 0; c < 4; ++c) rig.x.v()(0, 5, c) += 1.0f;
  rig.forward();
  for (index_t t = 0; t < 8; ++t)
    for (index_t c = 0; c < 4; ++c) {
      bool same = rig.y.v()(0, t, c) == before[t * 4 + c];
      CHECK(same == (t < 5));
    }
}

TEST_CASE("short_conv: bad shapes throw hyena::error") {
  using L = nn::short_conv<backend::cpu, float>;
  L::config c{.channels = 4, .kernel = 3};
  L::params p;
  arena<float> a;
  a.bind(p, c);
  L::cache k;
  backend::host_context ctx;
  tensor<float> x({2, 5, 3}), y({2, 5, 3});
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x.v(), y.v()), hyena::error);  // 3 channels, not 4
  tensor<float> x2({2, 5, 4}), y2({2, 6, 4});
  CHECK_THROWS_AS(L::forward(ctx, c, p, k, x2.v(), y2.v()), hyena::error);  // output shape
  L::config bad{.channels = 4, .kernel = 0};
  CHECK_THROWS_AS(L::forward(ctx, bad, p, k, x2.v(), x2.v()), hyena::error);
}
