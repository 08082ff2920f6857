// cpu_ref/conv.hpp: (to be written)
#pragma once
#include "../context.hpp"

namespace hyena::backend {

struct ref_conv_ops {};

}  // namespace hyena::backend
