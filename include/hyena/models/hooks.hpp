// models/hooks.hpp: read and steer a model's intermediate activations without
// touching its code (what distillation needs).
#pragma once
#include <functional>

#include "../tensor/view.hpp"

namespace hyena::models {

// Where in block `layer` a hook fires.
enum class hook_point { block_input, mixer_output, block_output };

inline const char* to_string(hook_point p) {
  switch (p) {
    case hook_point::block_input: return "block_input";
    case hook_point::mixer_output: return "mixer_output";
    case hook_point::block_output: return "block_output";
  }
  return "?";
}

template <class T, class Memory = host_memory>
struct hooks {
  // Called during forward once the activation exists: read it (copy it if you need it later
  // in inference mode, where buffers are reused).
  std::function<void(index_t layer, hook_point, view<const T, Memory> activation)> on_forward;
  // Called during backward with the gradient of the loss w.r.t. that activation, before it
  // flows further down: add an extra gradient into it (e.g. an activation-matching loss).
  std::function<void(index_t layer, hook_point, view<T, Memory> grad)> on_backward;
};

}  // namespace hyena::models
