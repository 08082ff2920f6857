// cpu_ref/elementwise.hpp: pointwise maps and row/column reductions as plain loops.
#pragma once
#include <cmath>

#include "../context.hpp"

namespace hyena::backend {

struct ref_elementwise_ops {
  template <class T>
  static void fill(host_context&, index_t n, T value, T* y) {
    for (index_t i = 0; i < n; ++i) y[i] = value;
  }
  template <class T>
  static void copy(host_context&, index_t n, const T* x, T* y) {
    for (index_t i = 0; i < n; ++i) y[i] = x[i];
  }
  // y = a + b
  template <class T>
  static void add(host_context&, index_t n, const T* a, const T* b, T* y) {
    for (index_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }
  // y += alpha * x
  template <class T>
  static void axpy(host_context&, index_t n, T alpha, const T* x, T* y) {
    for (index_t i = 0; i < n; ++i) y[i] += alpha * x[i];
  }
  // y = a * b (elementwise)
  template <class T>
  static void mul(host_context&, index_t n, const T* a, const T* b, T* y) {
    for (index_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
  }
  // y[r, c] += bias[c] for a rows x cols matrix
  template <class T>
  static void add_bias(host_context&, index_t rows, index_t cols, const T* bias, T* y) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < cols; ++c) y[r * cols + c] += bias[c];
  }
  // dbias[c] += sum_r dy[r, c]
  template <class T>
  static void bias_grad(host_context&, index_t rows, index_t cols, const T* dy, T* dbias) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < cols; ++c) dbias[c] += dy[r * cols + c];
  }
  // sum of squares (for gradient clipping and tests), accumulated in double
  template <class T>
  static double sum_squares(host_context&, index_t n, const T* x) {
    double s = 0;
    for (index_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
    return s;
  }
};

}  // namespace hyena::backend
