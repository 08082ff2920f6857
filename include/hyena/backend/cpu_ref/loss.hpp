// cpu_ref/loss.hpp: training losses and their gradients as plain loops in double (the oracle).
//
// Each op takes raw row-major buffers: `rows` rows of `vocab` logits. Per-row losses go to
// `losses` when it is non-null, the gradient to `dlogits`/`dstudent`/`da` when non-null,
// and the sum of all per-row losses comes back as a double so callers need no scratch.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../concept.hpp"  // ignore_target
#include "../context.hpp"

namespace hyena::backend {

struct ref_loss_ops {
  // Throws unless every target is in [0, vocab) or ignore_target; returns how many rows count.
  static index_t count_targets(host_context&, index_t rows, index_t vocab, const std::int32_t* targets) {
    index_t n = 0;
    for (index_t r = 0; r < rows; ++r) {
      std::int32_t t = targets[r];
      HYENA_CHECK(t == ignore_target || (t >= 0 && t < vocab), "cross_entropy: target ", t, " at row ", r,
                  " is outside [0, ", vocab, ") and is not the ignore index ", ignore_target);
      if (t != ignore_target) ++n;
    }
    return n;
  }

  // loss_r = logsumexp(logits_r) - logits_r[target_r];
  // dlogits_r = grad_scale * (softmax(logits_r) - onehot(target_r)).
  template <class T>
  static double cross_entropy(host_context& ctx, index_t rows, index_t vocab, const T* logits,
                              const std::int32_t* targets, T* losses, T* dlogits, T grad_scale) {
    count_targets(ctx, rows, vocab, targets);  // validate before writing anything
    double total = 0;
    for (index_t r = 0; r < rows; ++r) {
      const T* x = logits + r * vocab;
      std::int32_t t = targets[r];
      if (t == ignore_target) {
        if (losses) losses[r] = T(0);
        if (dlogits)
          for (index_t i = 0; i < vocab; ++i) dlogits[r * vocab + i] = T(0);
        continue;
      }
      double m = -INFINITY;
      for (index_t i = 0; i < vocab; ++i) m = std::max(m, double(x[i]));
      double s = 0;
      for (index_t i = 0; i < vocab; ++i) s += std::exp(double(x[i]) - m);
      double lse = m + std::log(s);
      double loss = lse - double(x[t]);
      if (losses) losses[r] = T(loss);
      total += loss;
      if (dlogits)
        for (index_t i = 0; i < vocab; ++i) {
          double p = std::exp(double(x[i]) - lse);
          dlogits[r * vocab + i] = T(double(grad_scale) * (p - (i == t ? 1.0 : 0.0)));
        }
    }
    return total;
  }

  // loss_r = KL(p_t || p_s) with p = softmax(logits / temperature);
  // dstudent_r = grad_scale * (p_s - p_t) / temperature.
  // log p_t - log p_s is formed as (t - s)/tau + (lse_s - lse_t), which is exactly 0 for
  // identical rows; the tiny negative values rounding can still give are clamped to 0.
  template <class T>
  static double kl_divergence(host_context&, index_t rows, index_t vocab, const T* teacher, const T* student,
                              T temperature, T* losses, T* dstudent, T grad_scale) {
    HYENA_CHECK(temperature > T(0), "kl_divergence: temperature must be positive, got ", temperature);
    const double tau = double(temperature);
    double total = 0;
    for (index_t r = 0; r < rows; ++r) {
      const T* t = teacher + r * vocab;
      const T* s = student + r * vocab;
      double mt = -INFINITY, ms = -INFINITY;
      for (index_t i = 0; i < vocab; ++i) {
        mt = std::max(mt, double(t[i]) / tau);
        ms = std::max(ms, double(s[i]) / tau);
      }
      double st = 0, ss = 0;
      for (index_t i = 0; i < vocab; ++i) {
        st += std::exp(double(t[i]) / tau - mt);
        ss += std::exp(double(s[i]) / tau - ms);
      }
      double lse_t = mt + std::log(st), lse_s = ms + std::log(ss);
      double kl = 0;
      for (index_t i = 0; i < vocab; ++i) {
        double pt = std::exp(double(t[i]) / tau - lse_t);
        kl += pt * ((double(t[i]) - double(s[i])) / tau + (lse_s - lse_t));
        if (dstudent) {
          double ps = std::exp(double(s[i]) / tau - lse_s);
          dstudent[r * vocab + i] = T(double(grad_scale) * (ps - pt) / tau);
        }
      }
      kl = std::max(kl, 0.0);
      if (losses) losses[r] = T(kl);
      total += kl;
    }
    return total;
  }

  // loss_r = KL(p_s || p_t) (reverse KL: mode-seeking) with p = softmax(logits / temperature);
  // dstudent_r = grad_scale * p_s * ((log p_s - log p_t) - loss_r) / temperature.
  template <class T>
  static double reverse_kl_divergence(host_context&, index_t rows, index_t vocab, const T* teacher,
                                      const T* student, T temperature, T* losses, T* dstudent, T grad_scale) {
    HYENA_CHECK(temperature > T(0), "reverse_kl_divergence: temperature must be positive, got ", temperature);
    double total = 0;
    for (index_t r = 0; r < rows; ++r) {
      double kl = reverse_kl_row(vocab, teacher + r * vocab, student + r * vocab, double(temperature),
                                 dstudent ? dstudent + r * vocab : nullptr, double(grad_scale));
      if (losses) losses[r] = T(kl);
      total += kl;
    }
    return total;
  }

  // KL over the teacher's k most likely tokens (ties: the lower id first): with K that set and
  // q = softmax over K of teacher / temperature,
  //   loss_r = sum_{i in K} q_i (log q_i - log p_s,i),  p_s = softmax(student / temperature)
  //   dstudent_r = grad_scale * (p_s - q [on K]) / temperature.
  // It needs only the teacher's top-k logits, so a cached teacher can store k values per row.
  // k >= vocab is the forward KL.
  template <class T>
  static double topk_kl_divergence(host_context&, index_t rows, index_t vocab, index_t k, const T* teacher,
                                   const T* student, T temperature, T* losses, T* dstudent, T grad_scale) {
    HYENA_CHECK(temperature > T(0), "topk_kl_divergence: temperature must be positive, got ", temperature);
    HYENA_CHECK(k >= 1, "topk_kl_divergence: k must be >= 1, got ", k);
    std::vector<index_t> ids(static_cast<std::size_t>(vocab));
    double total = 0;
    for (index_t r = 0; r < rows; ++r) {
      double kl = topk_kl_row(vocab, std::min(k, vocab), teacher + r * vocab, student + r * vocab,
                              double(temperature), dstudent ? dstudent + r * vocab : nullptr, double(grad_scale),
                              ids.data());
      if (losses) losses[r] = T(kl);
      total += kl;
    }
    return total;
  }

  // One row of each (the cpu backend threads over rows with these).
  template <class T>
  static double reverse_kl_row(index_t vocab, const T* t, const T* s, double tau, T* g, double grad_scale) {
    const double lse_t = log_sum_exp(vocab, t, tau), lse_s = log_sum_exp(vocab, s, tau);
    double kl = 0;
    for (index_t i = 0; i < vocab; ++i) {
      const double ps = std::exp(double(s[i]) / tau - lse_s);
      kl += ps * ((double(s[i]) - double(t[i])) / tau + (lse_t - lse_s));
    }
    kl = std::max(kl, 0.0);
    if (g)
      for (index_t i = 0; i < vocab; ++i) {
        const double ps = std::exp(double(s[i]) / tau - lse_s);
        const double diff = (double(s[i]) - double(t[i])) / tau + (lse_t - lse_s);
        g[i] = T(grad_scale * ps * (diff - kl) / tau);
      }
    return kl;
  }
  template <class T>
  static double topk_kl_row(index_t vocab, index_t k, const T* t, const T* s, double tau, T* g, double grad_scale,
                            index_t* ids) {
    for (index_t i = 0; i < vocab; ++i) ids[i] = i;
    std::partial_sort(ids, ids + k, ids + vocab, [&](index_t a, index_t b) { return t[a] > t[b] || (t[a] == t[b] && a < b); });
    double m = -INFINITY, z = 0;
    for (index_t j = 0; j < k; ++j) m = std::max(m, double(t[ids[j]]) / tau);
    for (index_t j = 0; j < k; ++j) z += std::exp(double(t[ids[j]]) / tau - m);
    const double lse_q = m + std::log(z), lse_s = log_sum_exp(vocab, s, tau);
    double kl = 0;
    for (index_t j = 0; j < k; ++j) {
      const index_t i = ids[j];
      const double log_q = double(t[i]) / tau - lse_q;
      kl += std::exp(log_q) * (log_q - (double(s[i]) / tau - lse_s));
    }
    kl = std::max(kl, 0.0);
    if (g) {
      for (index_t i = 0; i < vocab; ++i) g[i] = T(grad_scale * std::exp(double(s[i]) / tau - lse_s) / tau);
      for (index_t j = 0; j < k; ++j) {
        const index_t i = ids[j];
        g[i] = T(double(g[i]) - grad_scale * std::exp(double(t[i]) / tau - lse_q) / tau);
      }
    }
    return kl;
  }
  // log sum_i exp(x_i / tau), in double
  template <class T>
  static double log_sum_exp(index_t n, const T* x, double tau) {
    double m = -INFINITY, z = 0;
    for (index_t i = 0; i < n; ++i) m = std::max(m, double(x[i]) / tau);
    for (index_t i = 0; i < n; ++i) z += std::exp(double(x[i]) / tau - m);
    return m + std::log(z);
  }

  // Returns sum_i (a_i - b_i)^2; da = grad_scale * 2 * (a - b).
  template <class T>
  static double mse(host_context&, index_t n, const T* a, const T* b, T* da, T grad_scale) {
    double total = 0;
    for (index_t i = 0; i < n; ++i) {
      double d = double(a[i]) - double(b[i]);
      total += d * d;
      if (da) da[i] = T(double(grad_scale) * 2.0 * d);
    }
    return total;
  }
};

}  // namespace hyena::backend
