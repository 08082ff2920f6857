// cpu/norm.hpp: (to be written) fast versions of the ops in cpu_ref/norm.hpp.
#pragma once
#include "../context.hpp"

namespace hyena::backend {

template <class Base>
struct cpu_norm_ops : Base {};

}  // namespace hyena::backend
