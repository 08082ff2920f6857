// memory.hpp: where a tensor's bytes live. A backend names its memory space;
// views carry it as a type so host and device pointers never mix silently.
#pragma once
#include <cstdlib>
#include <cstring>
#include <new>

#include "../config.hpp"

namespace hyena {

// Plain host memory, shared by the cpu_ref and cpu backends.
struct host_memory {
  static constexpr std::size_t alignment = 64;  // one cache line, one AVX-512 vector

  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    void* p = std::aligned_alloc(alignment, rounded);
    if (!p) throw error("host_memory: out of memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  static void release(void* p) { std::free(p); }
  static void copy(void* dst, const void* src, std::size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  static void zero(void* dst, std::size_t bytes) {
    if (bytes) std::memset(dst, 0, bytes);
  }
  // Transfers between this memory and the host's: plain copies here (a device memory's are not).
  static void to_host(void* host_dst, const void* src, std::size_t bytes) { copy(host_dst, src, bytes); }
  static void to_device(void* dst, const void* host_src, std::size_t bytes) { copy(dst, host_src, bytes); }
};

}  // namespace hyena
