// cpu/conv.hpp: (to be written) fast versions of the ops in cpu_ref/conv.hpp.
#pragma once
#include "../context.hpp"

namespace hyena::backend {

template <class Base>
struct cpu_conv_ops : Base {};

}  // namespace hyena::backend
