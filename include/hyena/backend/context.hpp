// context.hpp: the explicit context a host backend op receives.
//
// It carries the thread count and long-lived state that ops create on first use
// (FFT plans, scratch buffers). Nothing is global: two contexts never share state.
#pragma once
#include <map>
#include <memory>
#include <typeindex>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../config.hpp"

namespace hyena::backend {

// The calling thread's index in the current OpenMP team (0 outside parallel regions).
inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// How a host context's fp32 matrix products may run; the names and meaning are PyTorch's
// (torch.set_float32_matmul_precision). `highest`, the default: in fp32. `medium`: with their
// inputs rounded to bfloat16 and their sums kept in fp32 (cpu/gemm_bf16.hpp, on AMX tiles where
// the CPU has them: cpu/gemm_amx.hpp; attention's products too, its softmax staying fp32), where
// the CPU has AVX512-BF16 and the build targets it; elsewhere they stay fp32 (a permission, as in
// PyTorch, not a promise of bf16 rounding).
enum class matmul_precision { highest, medium };

class host_context {
 public:
  // threads <= 0: all the threads OpenMP offers.
  explicit host_context(int threads = 0) : threads_(threads > 0 ? threads : default_threads()) {}

  int threads() const { return threads_; }

  matmul_precision float32_matmul_precision() const { return precision_; }
  void set_float32_matmul_precision(matmul_precision p) { precision_ = p; }

  // The single instance of State owned by this context, created on first use.
  template <class State>
  State& state() {
    auto it = states_.find(std::type_index(typeid(State)));
    if (it == states_.end()) {
      auto holder = std::make_shared<State>();
      it = states_.emplace(std::type_index(typeid(State)), holder).first;
    }
    return *static_cast<State*>(it->second.get());
  }

  // Buffers an op needs on every call, kept here so that calls after the first allocate
  // nothing: `slots` buffers (one per thread, say) of at least `count` values of V, under the
  // key Tag. Contents are left from the previous call: callers initialise what they read.
  // Fetch them before a parallel region (this lookup is not thread-safe), index by thread.
  template <class Tag, class V>
  std::vector<std::vector<V>>& scratch(int slots, std::size_t count) {
    auto& held = state<scratch_slots<Tag, V>>().slots;
    if (static_cast<int>(held.size()) < slots) held.resize(static_cast<std::size_t>(slots));
    for (auto& buf : held)
      if (buf.size() < count) buf.resize(count);
    return held;
  }

  static int default_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
  }

 private:
  template <class Tag, class V>
  struct scratch_slots {
    std::vector<std::vector<V>> slots;
  };
  int threads_;
  matmul_precision precision_ = matmul_precision::highest;
  std::map<std::type_index, std::shared_ptr<void>> states_;
};

}  // namespace hyena::backend
