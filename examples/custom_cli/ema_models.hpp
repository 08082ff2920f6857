// ema_models.hpp: the user models a custom `hyena` CLI loads, registered in one line.
// Built into the CLI's sources with HYENA_CLI_MODELS naming this file (examples/cli/models.hpp
// includes it where the built-in list is defined, so gpt_neox, model_list and named_model are
// in scope).
#pragma once
#include "../ema_mixer.hpp"

namespace hyena::cli {
using user_models = model_list<named_model<"ema_gpt_neox", models::with_mixer<gpt_neox, example::ema_mixer>>>;
}  // namespace hyena::cli
