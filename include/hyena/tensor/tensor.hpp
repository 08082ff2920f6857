// tensor.hpp: an owning, contiguous tensor in one backend's memory.
#pragma once
#include <utility>
#include <vector>

#include "view.hpp"

namespace hyena {

template <class T, class Memory = host_memory>
class tensor {
 public:
  tensor() = default;
  explicit tensor(hyena::shape s) : shape_(s) {
    data_ = static_cast<T*>(Memory::allocate(sizeof(T) * s.numel()));
  }
  ~tensor() { Memory::release(data_); }
  tensor(const tensor&) = delete;
  tensor& operator=(const tensor&) = delete;
  tensor(tensor&& o) noexcept : data_(std::exchange(o.data_, nullptr)), shape_(o.shape_) {}
  tensor& operator=(tensor&& o) noexcept {
    if (this != &o) {
      Memory::release(data_);
      data_ = std::exchange(o.data_, nullptr);
      shape_ = o.shape_;
    }
    return *this;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  const hyena::shape& shape() const { return shape_; }
  index_t numel() const { return shape_.numel(); }

  view<T, Memory> v() { return {data_, shape_}; }
  view<const T, Memory> v() const { return {data_, shape_}; }
  operator view<T, Memory>() { return v(); }
  operator view<const T, Memory>() const { return v(); }

  void zero() { Memory::zero(data_, sizeof(T) * numel()); }

 private:
  T* data_ = nullptr;
  hyena::shape shape_{};
};

// Host-side helpers used by tests and I/O.
template <class T>
tensor<T> make_tensor(hyena::shape s, const std::vector<T>& values) {
  HYENA_CHECK(static_cast<index_t>(values.size()) == s.numel(), "make_tensor: ", values.size(),
              " values for shape ", s);
  tensor<T> t(s);
  for (index_t i = 0; i < s.numel(); ++i) t.data()[i] = values[i];
  return t;
}

}  // namespace hyena
