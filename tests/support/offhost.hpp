// offhost.hpp: cpu_ref's ops over a memory type that is not host_memory (its transfers are
// copies), so the library treats its tensors as device tensors and takes a device backend's code
// paths (uploads, downloads, staging through the host) on the CPU. With the same ops and the same
// data, every result must equal cpu_ref's bit for bit. Used by train/test_device_staging.cpp
// (training, checkpoints, distillation, generation) and backend/test_op_suite.cpp (every op).
#pragma once
#include <cstddef>

#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu_ref/cpu_ref.hpp>
#include <hyena/tensor/memory.hpp>

namespace hyena::testing {

// Host bytes under another memory type: what a device memory looks like to the library.
// `transfers` counts the to_host / to_device calls.
struct offhost_memory {
  static constexpr std::size_t alignment = host_memory::alignment;
  static void* allocate(std::size_t bytes) { return host_memory::allocate(bytes); }
  static void release(void* p) { host_memory::release(p); }
  static void copy(void* dst, const void* src, std::size_t bytes) { host_memory::copy(dst, src, bytes); }
  static void zero(void* dst, std::size_t bytes) { host_memory::zero(dst, bytes); }
  static void to_host(void* dst, const void* src, std::size_t bytes) {
    ++transfers;
    host_memory::copy(dst, src, bytes);
  }
  static void to_device(void* dst, const void* src, std::size_t bytes) {
    ++transfers;
    host_memory::copy(dst, src, bytes);
  }
  static inline long transfers = 0;
};

struct offhost : backend::cpu_ref {
  using memory = offhost_memory;
  static constexpr const char* name = "offhost";
};
static_assert(backend::Backend<offhost>);

}  // namespace hyena::testing
