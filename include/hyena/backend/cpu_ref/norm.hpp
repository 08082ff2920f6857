// cpu_ref/norm.hpp: (to be written)
#pragma once
#include "../context.hpp"

namespace hyena::backend {

struct ref_norm_ops {};

}  // namespace hyena::backend
