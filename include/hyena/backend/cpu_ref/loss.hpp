// cpu_ref/loss.hpp: (to be written)
#pragma once
#include "../context.hpp"

namespace hyena::backend {

struct ref_loss_ops {};

}  // namespace hyena::backend
