// cpu/filter.hpp: (to be written) fast versions of the ops in cpu_ref/filter.hpp.
#pragma once
#include "../context.hpp"

namespace hyena::backend {

template <class Base>
struct cpu_filter_ops : Base {};

}  // namespace hyena::backend
