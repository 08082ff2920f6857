#include <hyena/models/llama.hpp>

#include "../support/block_golden.hpp"
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
  testing::check_block_against_fixture<models::llama_block<backend::cpu, float>>(fx, c);
}
