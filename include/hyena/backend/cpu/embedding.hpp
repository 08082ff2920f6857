// cpu/embedding.hpp: (to be written) fast versions of the ops in cpu_ref/embedding.hpp.
#pragma once
#include "../context.hpp"

namespace hyena::backend {

template <class Base>
struct cpu_embedding_ops : Base {};

}  // namespace hyena::backend
