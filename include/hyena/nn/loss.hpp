// nn/loss.hpp: mean losses over views, each filling the gradient of that mean.
//
//   cross_entropy_loss<B>(ctx, logits, targets, dlogits = {})   mean over rows whose target is
//                                                               not ignore_index (-1)
//   kl_div_loss<B>(ctx, teacher, student, tau, dstudent = {})   tau^2 * mean over rows of
//                                                               KL(p_teacher || p_student), as in
//                                                               Hinton distillation
//   reverse_kl_loss<B>(ctx, teacher, student, tau, dstudent)   tau^2 * mean KL(p_student || p_teacher)
//   topk_kl_loss<B>(ctx, teacher, student, k, tau, dstudent)   tau^2 * mean KL over the teacher's top k
//                                                               tokens (backend topk_kl_divergence)
//   mse_loss<B>(ctx, a, b, da = {})                             mean over elements of (a - b)^2
//
// Logits are (rows, vocab) or (batch, seq, vocab); targets have the leading dimensions.
// An empty gradient view skips the gradient. A loss that is not finite throws, so a
// diverging run stops at the step that diverged.
#pragma once
#include <cmath>
#include <cstdint>
#include <sstream>
#include <type_traits>

#include "layer.hpp"

namespace hyena::nn {

inline constexpr std::int32_t ignore_index = backend::ignore_target;

namespace loss_detail {

template <class V>
using scalar_of = std::remove_const_t<typename V::value_type>;

// Rows of a (rows, vocab) or (batch, seq, vocab) view.
template <class V>
index_t logit_rows(const V& v, const char* what) {
  HYENA_CHECK(v.rank() == 2 || v.rank() == 3, what, ": expected (rows, vocab) or (batch, seq, vocab), got shape ",
              v.shape);
  HYENA_CHECK(v.contiguous(), what, ": must be contiguous");
  return v.numel() / v.size(v.rank() - 1);
}

// Optional gradient: empty, or the same shape as `like` and contiguous.
template <class G, class V>
auto* grad_ptr(const G& g, const V& like, const char* what) {
  using T = scalar_of<V>;
  static_assert(std::is_same_v<typename G::value_type, T>, "loss: gradient must have the loss's scalar type");
  if (g.empty()) return static_cast<T*>(nullptr);
  check_same_shape(g, like, what);
  HYENA_CHECK(g.contiguous(), what, ": must be contiguous");
  return g.data;
}

inline double finite_or_throw(double loss, const char* what) {
  if (!std::isfinite(loss)) {
    std::ostringstream os;
    os << what << ": loss is not finite (" << loss << "); check the inputs for NaN or inf";
    throw nonfinite_error(os.str());
  }
  return loss;
}

}  // namespace loss_detail

template <class B, class L, class TV, class G = view_of<B, loss_detail::scalar_of<L>>>
double cross_entropy_loss(typename B::context& ctx, const L& logits, const TV& targets, const G& dlogits = {}) {
  using T = loss_detail::scalar_of<L>;
  static_assert(std::is_same_v<typename L::memory, typename B::memory>, "cross_entropy_loss: logits not in B's memory");
  static_assert(std::is_same_v<std::remove_const_t<typename TV::value_type>, std::int32_t>,
                "cross_entropy_loss: targets must be int32");
  index_t rows = loss_detail::logit_rows(logits, "cross_entropy_loss logits");
  index_t vocab = logits.size(logits.rank() - 1);
  HYENA_CHECK(targets.rank() == logits.rank() - 1, "cross_entropy_loss: targets shape ", targets.shape,
              " does not match logits shape ", logits.shape);
  for (int d = 0; d < targets.rank(); ++d)
    HYENA_CHECK(targets.size(d) == logits.size(d), "cross_entropy_loss: targets shape ", targets.shape,
                " does not match logits shape ", logits.shape);
  HYENA_CHECK(targets.contiguous(), "cross_entropy_loss: targets must be contiguous");
  T* g = loss_detail::grad_ptr(dlogits, logits, "cross_entropy_loss gradient");
  index_t counted = B::count_targets(ctx, rows, vocab, targets.data);
  // Every row ignored: nothing to learn from; the loss and its gradient are 0.
  T scale = counted > 0 ? T(1.0 / double(counted)) : T(0);
  double total = B::cross_entropy(ctx, rows, vocab, logits.data, targets.data, static_cast<T*>(nullptr), g, scale);
  return loss_detail::finite_or_throw(counted > 0 ? total / double(counted) : 0.0, "cross_entropy_loss");
}

template <class B, class LT, class LS, class G = view_of<B, loss_detail::scalar_of<LS>>>
double kl_div_loss(typename B::context& ctx, const LT& teacher, const LS& student, double tau, const G& dstudent = {}) {
  using T = loss_detail::scalar_of<LS>;
  static_assert(std::is_same_v<loss_detail::scalar_of<LT>, T>, "kl_div_loss: teacher and student scalar types differ");
  HYENA_CHECK(tau > 0 && std::isfinite(tau), "kl_div_loss: temperature must be positive and finite, got ", tau);
  check_same_shape(teacher, student, "kl_div_loss teacher vs student logits");
  index_t rows = loss_detail::logit_rows(student, "kl_div_loss student logits");
  loss_detail::logit_rows(teacher, "kl_div_loss teacher logits");
  index_t vocab = student.size(student.rank() - 1);
  T* g = loss_detail::grad_ptr(dstudent, student, "kl_div_loss gradient");
  if (rows == 0) return 0.0;
  double factor = tau * tau / double(rows);
  double total = B::kl_divergence(ctx, rows, vocab, teacher.data, student.data, T(tau), static_cast<T*>(nullptr), g,
                                  T(factor));
  return loss_detail::finite_or_throw(total * factor, "kl_div_loss");
}

namespace loss_detail {
// Shapes, temperature and the tau^2 / rows factor shared by the distillation divergences;
// calls op(rows, vocab, gradient pointer, factor) for the summed loss.
template <class LT, class LS, class G, class Op>
double distillation_divergence(const char* what, const LT& teacher, const LS& student, double tau, const G& dstudent,
                               Op&& op) {
  using T = scalar_of<LS>;
  static_assert(std::is_same_v<scalar_of<LT>, T>, "distillation loss: teacher and student scalar types differ");
  HYENA_CHECK(tau > 0 && std::isfinite(tau), what, ": temperature must be positive and finite, got ", tau);
  check_same_shape(teacher, student, what);
  const index_t rows = logit_rows(student, what);
  logit_rows(teacher, what);
  T* g = grad_ptr(dstudent, student, what);
  if (rows == 0) return 0.0;
  const double factor = tau * tau / double(rows);
  return finite_or_throw(op(rows, student.size(student.rank() - 1), g, factor) * factor, what);
}
}  // namespace loss_detail

template <class B, class LT, class LS, class G = view_of<B, loss_detail::scalar_of<LS>>>
double reverse_kl_loss(typename B::context& ctx, const LT& teacher, const LS& student, double tau,
                       const G& dstudent = {}) {
  using T = loss_detail::scalar_of<LS>;
  return loss_detail::distillation_divergence("reverse_kl_loss", teacher, student, tau, dstudent,
                                              [&](index_t rows, index_t vocab, T* g, double factor) {
                                                return B::reverse_kl_divergence(ctx, rows, vocab, teacher.data,
                                                                                student.data, T(tau),
                                                                                static_cast<T*>(nullptr), g, T(factor));
                                              });
}

template <class B, class LT, class LS, class G = view_of<B, loss_detail::scalar_of<LS>>>
double topk_kl_loss(typename B::context& ctx, const LT& teacher, const LS& student, index_t k, double tau,
                    const G& dstudent = {}) {
  using T = loss_detail::scalar_of<LS>;
  HYENA_CHECK(k >= 1, "topk_kl_loss: k must be >= 1, got ", k);
  return loss_detail::distillation_divergence("topk_kl_loss", teacher, student, tau, dstudent,
                                              [&](index_t rows, index_t vocab, T* g, double factor) {
                                                return B::topk_kl_divergence(ctx, rows, vocab, k, teacher.data,
                                                                             student.data, T(tau),
                                                                             static_cast<T*>(nullptr), g, T(factor));
                                              });
}

template <class B, class VA, class VB, class G = view_of<B, loss_detail::scalar_of<VA>>>
double mse_loss(typename B::context& ctx, const VA& a, const VB& b, const G& da = {}) {
  using T = loss_detail::scalar_of<VA>;
  static_assert(std::is_same_v<loss_detail::scalar_of<VB>, T>, "mse_loss: a and b scalar types differ");
  check_same_shape(a, b, "mse_loss a vs b");
  HYENA_CHECK(a.contiguous() && b.contiguous(), "mse_loss: inputs must be contiguous");
  T* g = loss_detail::grad_ptr(da, a, "mse_loss gradient");
  index_t n = a.numel();
  if (n == 0) return 0.0;
  double total = B::mse(ctx, n, a.data, b.data, g, T(1.0 / double(n)));
  return loss_detail::finite_or_throw(total / double(n), "mse_loss");
}

}  // namespace hyena::nn
