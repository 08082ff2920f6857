// view.hpp: a non-owning, strided view of a tensor.
#pragma once
#include <type_traits>

#include "memory.hpp"
#include "shape.hpp"

namespace hyena {

template <class T, class Memory = host_memory>
struct view {
  using value_type = T;
  using memory = Memory;

  T* data = nullptr;
  hyena::shape shape{};
  std::array<index_t, max_rank> stride{};

  view() = default;
  view(T* p, hyena::shape s) : data(p), shape(s), stride(s.row_major_strides()) {}
  view(T* p, hyena::shape s, std::array<index_t, max_rank> st) : data(p), shape(s), stride(st) {}

  // A view of non-const T converts to a view of const T.
  template <class U>
    requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
  view(const view<U, Memory>& o) : data(o.data), shape(o.shape), stride(o.stride) {}

  int rank() const { return shape.rank; }
  index_t size(int i) const { return shape.dims[i]; }
  index_t numel() const { return shape.numel(); }
  bool empty() const { return data == nullptr || numel() == 0; }
  bool contiguous() const { return stride == shape.row_major_strides() || numel() <= 1; }

  // Element access on host memory (tests, reference code, I/O).
  T& operator()(index_t i) const { return data[i * stride[0]]; }
  T& operator()(index_t i, index_t j) const { return data[i * stride[0] + j * stride[1]]; }
  T& operator()(index_t i, index_t j, index_t k) const {
    return data[i * stride[0] + j * stride[1] + k * stride[2]];
  }
  T& operator()(index_t i, index_t j, index_t k, index_t l) const {
    return data[i * stride[0] + j * stride[1] + k * stride[2] + l * stride[3]];
  }

  // The same memory seen with another shape (must be contiguous, same size).
  view reshape(hyena::shape s) const {
    HYENA_CHECK(contiguous(), "reshape: view is not contiguous");
    HYENA_CHECK(s.numel() == numel(), "reshape: ", shape, " has ", numel(), " elements, ", s,
                " needs ", s.numel());
    return view(data, s);
  }
  // Rows [begin, end) of the first dimension.
  view slice(index_t begin, index_t end) const {
    HYENA_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= shape[0], "slice: [", begin,
                ", ", end, ") out of range for ", shape);
    view v = *this;
    v.data = data + begin * stride[0];
    v.shape.dims[0] = end - begin;
    return v;
  }
};

// Throws hyena::error naming `what` when the view's shape is not `expected`.
template <class T, class M>
void check_shape(const view<T, M>& v, const shape& expected, const char* what) {
  HYENA_CHECK(v.shape == expected, what, ": expected shape ", expected, ", got ", v.shape);
}

}  // namespace hyena
