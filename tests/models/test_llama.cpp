#include <hyena/models/llama.hpp>

#include "../support/fixture.hpp"
#include "../support/model_check.hpp"

using namespace hyena;

namespace {
models::model_config tiny() { return models::llama_config(11, 8, 2, 4, 2, 12, 6); }
}  // namespace

TEST_CASE("llama: whole-model gradients (GQA, RMSNorm, SwiGLU) match central differences") {
  testing::check_model_gradients<models::llama<backend::cpu_ref, double>>(tiny(), 2, 5);
}

TEST_CASE("llama: cpu matches cpu_ref") {
  auto c = models::llama_config(29, 32, 2, 4, 2, 48, 12);
  testing::check_model_parity<models::llama<backend::cpu>, models::llama<backend::cpu_ref>>(c, 2, 12);
}

TEST_CASE("llama: one block matches the independent PyTorch implementation") {
  auto fx = testing::fixture::load("llama_block.json");
  models::model_config c = models::llama_config(16, fx.meta["hidden"], 1, fx.meta["heads"], fx.meta["kv_heads"],
                                                fx.meta["intermediate"], fx.meta["seq"]);
  using blk = models::llama_block<backend::cpu, float>;
  blk::params p, g;
  blk::cache k;
  arena<float> pa, ga, ka;
  pa.bind(p, c);
  ga.bind(g, c);
  const index_t batch = fx.meta["batch"], seq = fx.meta["seq"];
  ka.bind(k, c, batch, seq);
  for_each_tensor<float>(p, [&](const std::string& n, view<float>& v, const shape&) { fx.copy_to(n, v); }, c);
  tensor<float> x({batch, seq, c.hidden}), y({batch, seq, c.hidden}), dy({batch, seq, c.hidden}), dx({batch, seq, c.hidden});
  fx.copy_to("input", x.v());
  fx.copy_to("r", dy.v());
  backend::host_context ctx;
  blk::forward(ctx, c, p, k, x.v(), y.v());
  CHECK(testing::relative_error(y.data(), fx.values<double>("output")) <= 1e-5);
  blk::backward(ctx, c, p, k, dy.v(), dx.v(), g);
  CHECK(testing::relative_error(dx.data(), fx.values<double>("grad.input")) <= 1e-5);
  for_each_tensor<float>(g, [&](const std::string& n, view<float>& v, const shape&) {
    INFO("grad.", n);
    CHECK(testing::relative_error(v.data, fx.values<double>("grad." + n)) <= 1e-5);
  }, c);
}
