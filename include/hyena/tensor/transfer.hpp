// transfer.hpp: moving tensor contents between the host and a backend's memory.
//
// Host code (initialisation, checkpoints, data loading, sampling) reads and writes host arrays;
// these put them where a model's tensors live. For host memory they are plain copies, so code
// written with them runs unchanged on every backend. Views must be contiguous.
#pragma once
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor.hpp"

namespace hyena {

// dst <- src[0, dst.numel()), src in host memory.
template <class T, class M>
void copy_from_host(const view<T, M>& dst, const std::remove_const_t<T>* src) {
  HYENA_CHECK(dst.contiguous(), "copy_from_host: the destination view is not contiguous");
  M::to_device(dst.data, src, sizeof(T) * std::size_t(dst.numel()));
}

// dst[0, src.numel()) <- src, dst in host memory.
template <class T, class M>
void copy_to_host(const view<T, M>& src, std::remove_const_t<T>* dst) {
  HYENA_CHECK(src.contiguous(), "copy_to_host: the source view is not contiguous");
  M::to_host(dst, src.data, sizeof(T) * std::size_t(src.numel()));
}

// The contents of `src` as a host vector.
template <class T, class M>
std::vector<std::remove_const_t<T>> to_host_vector(const view<T, M>& src) {
  std::vector<std::remove_const_t<T>> out(static_cast<std::size_t>(src.numel()));
  copy_to_host(src, out.data());
  return out;
}

// A tensor in memory M holding a copy of the host tensor `src`.
template <class M, class T>
tensor<T, M> to_memory(const tensor<T>& src) {
  tensor<T, M> out(src.shape());
  M::to_device(out.data(), src.data(), sizeof(T) * std::size_t(src.numel()));
  return out;
}

}  // namespace hyena
