// cpu_ref/elementwise.hpp: pointwise maps and row/column reductions as plain loops.
#pragma once
#include <cmath>
#include <numbers>

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
  // y = alpha * y
  template <class T>
  static void scale(host_context&, index_t n, T alpha, T* y) {
    for (index_t i = 0; i < n; ++i) y[i] = alpha * y[i];
  }
  // y = alpha * x + beta * y
  template <class T>
  static void axpby(host_context&, index_t n, T alpha, const T* x, T beta, T* y) {
    for (index_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
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
  // GELU in the exact erf form (GPT-NeoX): y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
  template <class T>
  static void gelu_forward(host_context&, index_t n, const T* x, T* y) {
    for (index_t i = 0; i < n; ++i) {
      double v = x[i];
      y[i] = T(0.5 * v * (1.0 + std::erf(v / std::numbers::sqrt2)));
    }
  }
  // dx = dy * (Phi(x) + x * phi(x)); pointwise, so dx may alias dy.
  template <class T>
  static void gelu_backward(host_context&, index_t n, const T* x, const T* dy, T* dx) {
    const double inv_sqrt_2pi = std::numbers::inv_sqrtpi / std::numbers::sqrt2;
    for (index_t i = 0; i < n; ++i) {
      double v = x[i];
      double d = 0.5 * (1.0 + std::erf(v / std::numbers::sqrt2)) + v * std::exp(-0.5 * v * v) * inv_sqrt_2pi;
      dx[i] = T(double(dy[i]) * d);
    }
  }
  // SwiGLU (Llama's MLP core): gate_up is (rows, 2*width) = [gate | up] per row and
  // y (rows, width) = silu(gate) * up, silu(g) = g * sigmoid(g).
  template <class T>
  static void swiglu_forward(host_context&, index_t rows, index_t width, const T* gate_up, T* y) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < width; ++c) {
        double g = gate_up[r * 2 * width + c], u = gate_up[r * 2 * width + width + c];
        y[r * width + c] = T(g / (1.0 + std::exp(-g)) * u);
      }
  }
  // dgate = dy * up * s * (1 + g (1 - s)), dup = dy * silu(g), with s = sigmoid(g);
  // dgate_up has gate_up's layout.
  template <class T>
  static void swiglu_backward(host_context&, index_t rows, index_t width, const T* gate_up, const T* dy,
                              T* dgate_up) {
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < width; ++c) {
        double g = gate_up[r * 2 * width + c], u = gate_up[r * 2 * width + width + c];
        double s = 1.0 / (1.0 + std::exp(-g)), d = dy[r * width + c];
        dgate_up[r * 2 * width + c] = T(d * u * s * (1.0 + g * (1.0 - s)));
        dgate_up[r * 2 * width + width + c] = T(d * g * s);
      }
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
