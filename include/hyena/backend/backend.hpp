// backend.hpp: what a backend is (concept.hpp), and the view of a backend's memory.
//
// A backend is an empty tag type with static ops, a `context` type passed to every op
// explicitly, and a `memory` type saying where its tensors live. Layers are templates over the
// backend. The concrete backends live in their own headers (cpu_ref/cpu_ref.hpp, cpu/cpu.hpp,
// cuda/cuda.hpp, the last for nvcc only) and each checks itself against the concept.
#pragma once
#include "../tensor/view.hpp"
#include "concept.hpp"

namespace hyena {
// A view in backend B's memory.
template <class B, class T>
using view_of = view<T, typename B::memory>;
}  // namespace hyena
