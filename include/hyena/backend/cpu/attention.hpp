// cpu/attention.hpp: (to be written) fast versions of the ops in cpu_ref/attention.hpp.
#pragma once
#include "../context.hpp"

namespace hyena::backend {

template <class Base>
struct cpu_attention_ops : Base {};

}  // namespace hyena::backend
