// cpu_ref/embedding.hpp: (to be written)
#pragma once
#include "../context.hpp"

namespace hyena::backend {

struct ref_embedding_ops {};

}  // namespace hyena::backend
