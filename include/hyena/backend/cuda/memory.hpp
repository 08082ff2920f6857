// cuda/memory.hpp: device memory with host_memory's static interface, so tensor<T,
// device_memory> and view<T, device_memory> work unchanged; plus explicit host<->device copies.
#pragma once
#include <string>

#include "check.hpp"

namespace hyena {

struct device_memory {
  static constexpr std::size_t alignment = 256;  // what cudaMalloc guarantees

  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky-free error so later calls do not see it
      throw error("device_memory: cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(e));
    }
    return p;
  }
  // Never throws: it runs in destructors.
  static void release(void* p) noexcept {
    if (p && cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
  }
  // Device to device (synchronous with respect to the host, like host_memory::copy).
  static void copy(void* dst, const void* src, std::size_t bytes) {
    if (bytes) HYENA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  }
  static void zero(void* dst, std::size_t bytes) {
    if (bytes) HYENA_CUDA_CHECK(cudaMemset(dst, 0, bytes));
  }
  static void to_host(void* host_dst, const void* device_src, std::size_t bytes) {
    if (bytes) HYENA_CUDA_CHECK(cudaMemcpy(host_dst, device_src, bytes, cudaMemcpyDeviceToHost));
  }
  static void to_device(void* device_dst, const void* host_src, std::size_t bytes) {
    if (bytes) HYENA_CUDA_CHECK(cudaMemcpy(device_dst, host_src, bytes, cudaMemcpyHostToDevice));
  }
};

}  // namespace hyena
