// random.hpp: a seeded generator for initialisation and tests (reproducible runs).
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

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

namespace detail {
// v[i] <- value(i) for every element of the contiguous view v: directly in host memory, else
// into a host buffer uploaded once (the same values on every backend).
template <class T, class M, class Fn>
void fill_each(const view<T, M>& v, Fn&& value) {
  HYENA_CHECK(v.contiguous(), "fill: the view is not contiguous");
  const index_t n = v.numel();
  if constexpr (std::is_same_v<M, host_memory>) {
    for (index_t i = 0; i < n; ++i) v.data[i] = value(i);
  } else {
    std::vector<T> host(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) host[std::size_t(i)] = value(i);
    M::to_device(v.data, host.data(), sizeof(T) * std::size_t(n));
  }
}
}  // namespace detail

// Initialisation fills, drawn on the host in element order (so a model initialises the same on
// every backend).
template <class T, class M>
void fill_normal(view<T, M> v, rng& r, double std = 1.0, double mean = 0.0) {
  detail::fill_each(v, [&](index_t) { return static_cast<T>(r.normal(mean, std)); });
}
template <class T, class M>
void fill_uniform(view<T, M> v, rng& r, double lo, double hi) {
  detail::fill_each(v, [&](index_t) { return static_cast<T>(r.uniform(lo, hi)); });
}
template <class T, class M>
void fill_value(view<T, M> v, T value) {
  detail::fill_each(v, [&](index_t) { return value; });
}

}  // namespace hyena
