// random.hpp: a seeded generator for initialisation and tests (reproducible runs).
#pragma once
#include <cmath>
#include <cstdint>
#include <random>

#include "view.hpp"

namespace hyena {

class rng {
 public:
  explicit rng(std::uint64_t seed = 0) : engine_(seed) {}
  double uniform(double lo = 0.0, double hi = 1.0) { return std::uniform_real_distribution<double>(lo, hi)(engine_); }
  double normal(double mean = 0.0, double std = 1.0) { return std::normal_distribution<double>(mean, std)(engine_); }
  std::uint64_t next() { return engine_(); }
  index_t below(index_t n) { return static_cast<index_t>(engine_() % static_cast<std::uint64_t>(n)); }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

// Host-memory fills.
template <class T>
void fill_normal(view<T> v, rng& r, double std = 1.0, double mean = 0.0) {
  for (index_t i = 0; i < v.numel(); ++i) v.data[i] = static_cast<T>(r.normal(mean, std));
}
template <class T>
void fill_uniform(view<T> v, rng& r, double lo, double hi) {
  for (index_t i = 0; i < v.numel(); ++i) v.data[i] = static_cast<T>(r.uniform(lo, hi));
}
template <class T>
void fill_value(view<T> v, T value) {
  for (index_t i = 0; i < v.numel(); ++i) v.data[i] = value;
}

}  // namespace hyena
