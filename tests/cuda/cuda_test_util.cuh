// cuda_test_util.cuh: what the CUDA op tests share: the two contexts, random never-zero inputs,
// device buffers that can be poisoned (NaN bytes) and read back, and the comparisons.
// CI has nvcc but no GPU: including this makes the program print "no CUDA device: skipped" and
// exit 0 before any test runs.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "hyena/backend/cuda/cuda.hpp"
#include "hyena/tensor/tensor.hpp"

namespace cuda_test {

using hyena::index_t;
using ref = hyena::backend::cpu_ref;
using gpu = hyena::backend::cuda;

// CI has nvcc but no GPU: say so and pass, before doctest's main runs any test.
inline const bool device_guard = [] {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("no CUDA device: skipped\n");
    std::fflush(stdout);
    std::exit(0);
  }
  return true;
}();

inline hyena::backend::host_context& hctx() {
  static hyena::backend::host_context c(1);
  return c;
}
// Deliberately never destroyed: a static context's destructor would run after the CUDA
// runtime has begun tearing down at exit.
inline gpu::context& dctx() {
  static gpu::context* c = new gpu::context(0, /*allow_tf32=*/false);
  return *c;
}

// Uniform in [-scale, scale] with |v| >= 0.05 * scale: never zero.
template <class T>
inline std::vector<T> random_vec(index_t n, unsigned seed, double scale = 1.0) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(0.05, 1.0);
  std::bernoulli_distribution sign(0.5);
  std::vector<T> v(n);
  for (auto& x : v) x = T((sign(g) ? -1.0 : 1.0) * u(g) * scale);
  return v;
}

// A device copy of a host vector; download() reads it back.
template <class T>
struct dbuf {
  T* p = nullptr;
  index_t n = 0;
  explicit dbuf(index_t count) : n(count) { p = static_cast<T*>(hyena::device_memory::allocate(sizeof(T) * n)); }
  explicit dbuf(const std::vector<T>& h) : dbuf(index_t(h.size())) { upload(h); }
  ~dbuf() { hyena::device_memory::release(p); }
  dbuf(dbuf&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr; }
  dbuf(const dbuf&) = delete;
  dbuf& operator=(const dbuf&) = delete;
  void upload(const std::vector<T>& h) { hyena::device_memory::to_device(p, h.data(), sizeof(T) * h.size()); }
  void poison() { HYENA_CUDA_CHECK(cudaMemset(p, 0xFF, sizeof(T) * n)); }  // all-ones bits: NaN
  std::vector<T> download() {
    dctx().synchronize();
    std::vector<T> h(n);
    hyena::device_memory::to_host(h.data(), p, sizeof(T) * n);
    return h;
  }
};
template <class T>
inline dbuf<T> poisoned(index_t n) {
  dbuf<T> b(n);
  b.poison();
  return b;
}

template <class T>
inline double max_abs(const std::vector<T>& v) {
  double m = 0;
  for (T x : v) m = std::max(m, std::abs(double(x)));
  return m;
}

// Per element: |got - want| <= rel * (w_weight * |want| + floor * max|want|); NaN fails.
template <class T>
inline void check_close(const std::vector<T>& got, const std::vector<T>& want, double rel, const char* what,
                 double floor = 1e-3, double w_weight = 1.0) {
  REQUIRE(got.size() == want.size());
  double scale = floor * max_abs(want);
  index_t bad = 0, first = -1;
  for (std::size_t i = 0; i < got.size(); ++i) {
    double g = got[i], w = want[i];
    bool ok = std::isfinite(g) && std::abs(g - w) <= rel * (w_weight * std::abs(w) + scale);
    if (!ok && bad++ == 0) first = index_t(i);
  }
  INFO(what << ": " << bad << " of " << got.size() << " elements off; first at " << first << " got "
            << (first >= 0 ? double(got[first]) : 0.0) << " want " << (first >= 0 ? double(want[first]) : 0.0));
  CHECK(bad == 0);
}
// |got - want| <= rel * max|want| everywhere (for sums whose terms cancel: GEMM, FFT).
template <class T>
inline void check_close_max(const std::vector<T>& got, const std::vector<T>& want, double rel, const char* what) {
  check_close(got, want, rel, what, 1.0, 0.0);
}

template <class T>
inline double tol(double f, double d) {
  return sizeof(T) == 4 ? f : d;
}

}  // namespace cuda_test
