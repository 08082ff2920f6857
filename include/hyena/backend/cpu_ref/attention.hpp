// cpu_ref/attention.hpp: (to be written)
#pragma once
#include "../context.hpp"

namespace hyena::backend {

struct ref_attention_ops {};

}  // namespace hyena::backend
