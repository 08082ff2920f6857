// A user-defined mixer gets the same checks as the library's own layers.
#include "../../examples/ema_mixer.hpp"

#include "../support/layer_check.hpp"
#include "../support/model_check.hpp"

using namespace hyena;

TEST_CASE("custom mixer: gradients and cpu/cpu_ref parity through the test helpers") {
  testing::check_layer_gradients<example::ema_mixer>({.hidden = 6}, 2, 5);
  testing::check_layer_parity<example::ema_mixer>({.hidden = 16}, 2, 9);
}

TEST_CASE("custom mixer: its hyperparameter (min_decay) is in the gradients too") {
  testing::check_layer_gradients<example::ema_mixer>({.hidden = 6, .min_decay = 0.5}, 2, 5);
  CHECK_THROWS_AS(example::ema_hparams{.min_decay = 1.0}.validate(), error);
}

TEST_CASE("custom mixer: the whole model with the swapped mixer has exact gradients") {
  using model = models::with_mixer<models::gpt_neox<backend::cpu_ref, double>, example::ema_mixer>;
  testing::check_model_gradients<model>(models::gpt_neox_config(11, 8, 2, 2, 16, 6), 1, 5);
}
