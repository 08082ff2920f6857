// custom_mixer: template-based prototyping. Defines a new token mixer (a causal
// exponential moving average per channel followed by a projection), drops it into the
// GPT-NeoX teacher's type with one `using`, and trains it.
#include <hyena/hyena.hpp>
#include <hyena/train/trainer.hpp>

#include <cstdio>

#include "ema_mixer.hpp"

using namespace hyena;

using Teacher = models::gpt_neox<backend::cpu>;
using EmaModel = models::with_mixer<Teacher, example::ema_mixer>;  // the one line that swaps the mixer

int main() {
  auto cfg = models::gpt_neox_config(256, 64, 2, 4, 256, 64);
  EmaModel m(cfg);
  rng r(0);
  m.init(r);
  std::string text;
  for (int i = 0; i < 300; ++i) text += "to be or not to be, that is the question. ";
  std::vector<std::int32_t> tokens(text.begin(), text.end());
  train::trainer_options o;
  o.batch = 4, o.seq = 64, o.steps = 60, o.lr = 3e-3, o.label = "ema mixer";
  backend::host_context ctx;
  auto res = train::trainer<EmaModel>(m, o).run(ctx, std::span<const std::int32_t>(tokens));
  std::printf("ema mixer: loss %.3f -> %.3f\n", res.history.front().loss, res.history.back().loss);
}
