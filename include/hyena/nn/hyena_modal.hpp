// nn/hyena_modal.hpp: distilling each long filter of a Hyena operator into a small diagonal
// recurrence (the modal form of nn/hyena_modal_form.hpp), after Laughing Hyena (Massaroli et
// al., NeurIPS 2023).
//
// Per channel, a model-order reduction of the filter h[0..L):
//   1. Ho-Kalman / ERA realisation: the Hankel matrix H[i, j] = h[i + j + 1] (n x n) has the
//      SVD U S V^T; with O = U_d S_d^(1/2) (its d leading directions), the state matrix
//      A = O_up^+ O_down (the shift of O) and its eigenvalues are the poles lambda_k (any with
//      |lambda| >= 1 pulled inside the unit circle, so the recurrence stays stable);
//   2. residues by linear least squares over t < fit_len: h[t] = Re sum_k R_k lambda_k^t.
// Linear algebra (SVD, eigenvalues, least squares) is Eigen's; this header is the only one in the
// library that needs Eigen, and only a program that converts a model includes it.
#pragma once
#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "hyena.hpp"
#include "hyena_modal_form.hpp"

namespace hyena::nn {

struct modal_fit {
  std::vector<std::complex<double>> poles, residues;  // `modes` of each
  double error = 0;                                   // ||h - h_modal||^2 / ||h||^2 over all of h
};

// Fits h[0..len) with `modes` modes; the residues fit the first fit_len samples (all when 0).
inline modal_fit fit_modes(const double* h, index_t len, index_t modes, index_t fit_len = 0) {
  HYENA_CHECK(len >= 2 && modes >= 1, "fit_modes: need a filter of >= 2 samples and >= 1 mode, got ", len, ", ",
              modes);
  if (fit_len <= 0 || fit_len > len) fit_len = len;
  modal_fit out;
  double norm = 0;
  for (index_t t = 0; t < len; ++t) norm += h[t] * h[t];
  const index_t n = std::max<index_t>(1, std::min<index_t>((len - 1) / 2, std::max<index_t>(4 * modes, 128)));
  const index_t d = std::min(modes, n);
  if (norm == 0) {
    out.poles.assign(std::size_t(modes), {0.0, 0.0});
    out.residues.assign(std::size_t(modes), {0.0, 0.0});
    return out;
  }
  // 1. Poles from the Hankel matrix's leading directions.
  Eigen::MatrixXd H(n, n);
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < n; ++j) H(i, j) = h[i + j + 1];
  Eigen::BDCSVD<Eigen::MatrixXd> svd(H, Eigen::ComputeThinU);
  Eigen::MatrixXd O = svd.matrixU().leftCols(d) * svd.singularValues().head(d).cwiseSqrt().asDiagonal();
  Eigen::MatrixXd A = O.topRows(n - 1).completeOrthogonalDecomposition().solve(O.bottomRows(n - 1));
  Eigen::EigenSolver<Eigen::MatrixXd> eig(A, false);
  for (index_t k = 0; k < d; ++k) {
    std::complex<double> lam = eig.eigenvalues()(k);
    if (!std::isfinite(lam.real()) || !std::isfinite(lam.imag())) lam = 0;
    if (std::abs(lam) >= 0.9999) lam *= 0.9999 / std::abs(lam);
    out.poles.push_back(lam);
  }
  // 2. Residues: h[t] = sum_k a_k Re(lambda_k^t) - b_k Im(lambda_k^t), R_k = a_k + i b_k.
  Eigen::MatrixXd X(fit_len, 2 * d);
  Eigen::VectorXd y(fit_len);
  for (index_t k = 0; k < d; ++k) {
    std::complex<double> p = 1.0;
    for (index_t t = 0; t < fit_len; ++t, p *= out.poles[std::size_t(k)]) {
      X(t, 2 * k) = p.real();
      X(t, 2 * k + 1) = -p.imag();
    }
  }
  for (index_t t = 0; t < fit_len; ++t) y(t) = h[t];
  Eigen::VectorXd ab = X.completeOrthogonalDecomposition().solve(y);
  for (index_t k = 0; k < d; ++k) out.residues.push_back({ab(2 * k), ab(2 * k + 1)});
  for (index_t k = d; k < modes; ++k) out.poles.push_back(0.0), out.residues.push_back(0.0);
  // The error over the whole filter (the tail past fit_len included).
  std::vector<std::complex<double>> pw(std::size_t(modes), 1.0);
  double err = 0;
  for (index_t t = 0; t < len; ++t) {
    double v = 0;
    for (index_t k = 0; k < modes; ++k) {
      v += (out.residues[std::size_t(k)] * pw[std::size_t(k)]).real();
      pw[std::size_t(k)] *= out.poles[std::size_t(k)];
    }
    err += (h[t] - v) * (h[t] - v);
  }
  out.error = err / norm;
  return out;
}

// The modal form of one Hyena operator: every filter of length `len` (<= max_seq) fitted with
// `modes` modes (fit_len as in fit_modes). Fills poles / residues (convs() hidden, modes, 2)
// and returns the layer's relative error ||h - h_modal||^2 / ||h||^2 over all its filters.
template <class B, class T>
double fit_hyena_modal(typename B::context& ctx, const hyena_config& c, const typename hyena_operator<B, T>::params& p,
                       index_t modes, index_t len, index_t fit_len, tensor<T>& poles, tensor<T>& residues) {
  using filt = implicit_filter<B, T>;
  HYENA_CHECK(len >= 2 && len <= c.max_seq, "fit_hyena_modal: length ", len, " not in [2, max_seq = ", c.max_seq, "]");
  const auto fc = c.filter();
  typename filt::cache k;
  arena<T, typename B::memory> a;
  a.bind(k, fc, index_t(1), len);
  tensor<T, typename B::memory> h(shape{fc.channels, len});
  filt::forward(ctx, fc, p.filter, k, len, h.v());
  poles = tensor<T>(shape{fc.channels, modes, 2});
  residues = tensor<T>(shape{fc.channels, modes, 2});
  std::vector<double> err(std::size_t(fc.channels)), norm(std::size_t(fc.channels));
#pragma omp parallel for schedule(dynamic)
  for (index_t ch = 0; ch < fc.channels; ++ch) {
    std::vector<double> row(h.data() + ch * len, h.data() + (ch + 1) * len);
    auto f = fit_modes(row.data(), len, modes, fit_len);
    for (index_t m = 0; m < modes; ++m) {
      poles.data()[(ch * modes + m) * 2] = T(f.poles[std::size_t(m)].real());
      poles.data()[(ch * modes + m) * 2 + 1] = T(f.poles[std::size_t(m)].imag());
      residues.data()[(ch * modes + m) * 2] = T(f.residues[std::size_t(m)].real());
      residues.data()[(ch * modes + m) * 2 + 1] = T(f.residues[std::size_t(m)].imag());
    }
    double nrm = 0;
    for (double v : row) nrm += v * v;
    norm[std::size_t(ch)] = nrm;
    err[std::size_t(ch)] = f.error * nrm;
  }
  double e = 0, n = 0;
  for (index_t ch = 0; ch < fc.channels; ++ch) e += err[std::size_t(ch)], n += norm[std::size_t(ch)];
  return n > 0 ? e / n : 0.0;
}

}  // namespace hyena::nn
