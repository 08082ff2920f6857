// cpu_ref/filter.hpp: (to be written)
#pragma once
#include "../context.hpp"

namespace hyena::backend {

struct ref_filter_ops {};

}  // namespace hyena::backend
