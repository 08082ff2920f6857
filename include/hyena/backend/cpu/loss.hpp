// cpu/loss.hpp: (to be written) fast versions of the ops in cpu_ref/loss.hpp.
#pragma once
#include "../context.hpp"

namespace hyena::backend {

template <class Base>
struct cpu_loss_ops : Base {};

}  // namespace hyena::backend
