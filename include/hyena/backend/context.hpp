// context.hpp: the explicit context a host backend op receives.
//
// It carries the thread count and long-lived state that ops create on first use
// (FFT plans, scratch buffers). Nothing is global: two contexts never share state.
#pragma once
#include <map>
#include <memory>
#include <typeindex>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../config.hpp"

namespace hyena::backend {

class host_context {
 public:
  // threads <= 0: all the threads OpenMP offers.
  explicit host_context(int threads = 0) : threads_(threads > 0 ? threads : default_threads()) {}

  int threads() const { return threads_; }

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

  static int default_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
  }

 private:
  int threads_;
  std::map<std::type_index, std::shared_ptr<void>> states_;
};

}  // namespace hyena::backend
