// cpu_ref/norm.hpp: LayerNorm and RMSNorm over the last dimension of a (rows, cols)
// matrix, as plain loops with double accumulators (the oracle).
//
// LayerNorm (PyTorch): y = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps),
// var the biased variance. RMSNorm (Llama): y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps).
// Forward saves mean / rstd per row (rows entries each) for backward. eps is a double.
// Parameter grads accumulate (+=); dx is assigned and may be null to skip it.
#pragma once
#include <cmath>

#include "../context.hpp"

namespace hyena::backend {

struct ref_norm_ops {
  template <class T>
  static void layer_norm_forward(host_context&, index_t rows, index_t cols, const T* x, const T* weight,
                                 const T* bias, double eps, T* y, T* mean, T* rstd) {
    for (index_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols;
      double s = 0;
      for (index_t c = 0; c < cols; ++c) s += double(xr[c]);
      double m = s / double(cols);
      // Two passes: the centred sum of squares does not cancel catastrophically.
      double v = 0;
      for (index_t c = 0; c < cols; ++c) v += (double(xr[c]) - m) * (double(xr[c]) - m);
      double rs = 1.0 / std::sqrt(v / double(cols) + eps);
      for (index_t c = 0; c < cols; ++c) y[r * cols + c] = T((double(xr[c]) - m) * rs * double(weight[c]) + double(bias[c]));
      mean[r] = T(m);
      rstd[r] = T(rs);
    }
  }

  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w, xhat = (x - mean) * rstd;
  // dweight += sum_rows dy * xhat, dbias += sum_rows dy.
  template <class T>
  static void layer_norm_backward(host_context&, index_t rows, index_t cols, const T* x, const T* weight,
                                  const T* mean, const T* rstd, const T* dy, T* dx, T* dweight, T* dbias) {
    for (index_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols;
      const T* dyr = dy + r * cols;
      double m = mean[r], rs = rstd[r];
      double sg = 0, sgx = 0;
      for (index_t c = 0; c < cols; ++c) {
        double xhat = (double(xr[c]) - m) * rs;
        double g = double(dyr[c]) * double(weight[c]);
        sg += g;
        sgx += g * xhat;
      }
      sg /= double(cols);
      sgx /= double(cols);
      for (index_t c = 0; c < cols; ++c) {
        double xhat = (double(xr[c]) - m) * rs;
        if (dx) dx[r * cols + c] = T(rs * (double(dyr[c]) * double(weight[c]) - sg - xhat * sgx));
      }
    }
    // Column sums, rows in order, in double.
    for (index_t c = 0; c < cols; ++c) {
      double sw = 0, sb = 0;
      for (index_t r = 0; r < rows; ++r) {
        double xhat = (double(x[r * cols + c]) - double(mean[r])) * double(rstd[r]);
        sw += double(dy[r * cols + c]) * xhat;
        sb += double(dy[r * cols + c]);
      }
      dweight[c] += T(sw);
      dbias[c] += T(sb);
    }
  }

  template <class T>
  static void rms_norm_forward(host_context&, index_t rows, index_t cols, const T* x, const T* weight, double eps,
                               T* y, T* rstd) {
    for (index_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols;
      double ss = 0;
      for (index_t c = 0; c < cols; ++c) ss += double(xr[c]) * double(xr[c]);
      double rs = 1.0 / std::sqrt(ss / double(cols) + eps);
      for (index_t c = 0; c < cols; ++c) y[r * cols + c] = T(double(xr[c]) * rs * double(weight[c]));
      rstd[r] = T(rs);
    }
  }

  // dx = rstd * (g - xhat * mean(g * xhat)) with g = dy * w, xhat = x * rstd;
  // dweight += sum_rows dy * xhat.
  template <class T>
  static void rms_norm_backward(host_context&, index_t rows, index_t cols, const T* x, const T* weight,
                                const T* rstd, const T* dy, T* dx, T* dweight) {
    for (index_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols;
      const T* dyr = dy + r * cols;
      double rs = rstd[r];
      double sgx = 0;
      for (index_t c = 0; c < cols; ++c) sgx += double(dyr[c]) * double(weight[c]) * double(xr[c]) * rs;
      sgx /= double(cols);
      for (index_t c = 0; c < cols; ++c) {
        double xhat = double(xr[c]) * rs;
        if (dx) dx[r * cols + c] = T(rs * (double(dyr[c]) * double(weight[c]) - xhat * sgx));
      }
    }
    for (index_t c = 0; c < cols; ++c) {
      double sw = 0;
      for (index_t r = 0; r < rows; ++r) sw += double(dy[r * cols + c]) * double(x[r * cols + c]) * double(rstd[r]);
      dweight[c] += T(sw);
    }
  }
};

}  // namespace hyena::backend
