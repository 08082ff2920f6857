// train/operator_alignment.hpp: aligning a Hyena operator's mixing matrices with a teacher's
// attention matrices (stage 1 of the distillation, before output alignment).
//
// An order-2 Hyena operator (nn/hyena.hpp) computes, per channel c and batch row,
//   gated_t = sum_{s <= t} M[t, s] v_s,   M[t, s] = x0_t (h[t - s] + [t == s] D) x1_s,
// a lower-triangular mixing matrix like attention's P (o_t = sum_s P[t, s] v_s). MOHAWK
// ("Transformers to SSMs", Bick et al. 2024, section 4.1, "matrix orientation") trains the
// new mixer so that its matrix matches the attention matrix on the teacher's inputs; here
//   loss = sum_{b, c} || M_{b,c} - P_{b, head(c)} ||_F^2 / sum_{b, c} || P_{b, head(c)} ||_F^2,
// head(c) = c / head_dim, the head whose output channel c is. The sums run over (t, s)
// without forming M (backend op hyena_attention_alignment); the gradient goes to x0, x1, h
// and D, and from there through the operator's short conv, in_proj and filter.
//
// Data parallel: with a communicator, the denominator is the mean over the ranks of each rank's
// own, so the ranks' losses (and gradients) average to the loss of their batches together.
#pragma once
#include "../dist/communicator.hpp"
#include "../nn/hyena.hpp"

namespace hyena::train {

template <class B, class T>
class operator_alignment {
 public:
  using op = nn::hyena_operator<B, T>;
  using context = typename B::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;

  // probs: (batch, heads, seq, seq) attention matrices; head_dim: channels per head.
  // After a forward of the operator (its cache `k`), returns the normalised loss above and,
  // when `g` is non-null, adds grad_scale * its gradient to the operator's parameter grads.
  double operator()(context& ctx, const typename op::config& c, const typename op::params& p,
                    const typename op::cache& k, ctview probs, index_t head_dim, typename op::params* g,
                    double grad_scale = 1.0, dist::communicator& comm = dist::local()) {
    HYENA_CHECK(c.order == 2 && c.rank == 1, "operator alignment: an order-", c.order, " rank-", c.rank,
                " Hyena operator's mixing matrix is not diag(x0) T_h diag(x1); alignment is defined for order 2, rank 1 ",
                "(use stage1_operator_fraction = 0)");
    const index_t batch = k.in_proj.x.size(0), seq = k.in_proj.x.size(1), D = c.hidden;
    HYENA_CHECK(probs.rank() == 4 && probs.size(0) == batch && probs.size(2) == seq && probs.size(3) == seq &&
                    probs.contiguous(),
                "operator alignment: attention matrices must be (", batch, ", heads, ", seq, ", ", seq, "), got ",
                probs.shape);
    HYENA_CHECK(head_dim > 0 && probs.size(1) * head_dim == D, "operator alignment: ", probs.size(1), " heads of ",
                head_dim, " channels do not cover the operator's ", D, " channels");
    const index_t n = batch * seq * D;
    // Each head's matrix counts once per channel it feeds.
    const double norm = std::max(
        dist::all_reduce_mean(comm, double(head_dim) * B::sum_squares(ctx, probs.numel(), probs.data)), 1e-30);
    const T* x0 = k.blocks.data;
    const T* x1 = k.blocks.data + n;
    if (!g) {
      return B::hyena_attention_alignment(ctx, batch, seq, D, head_dim, x0, x1, static_cast<const T*>(k.h.data), seq,
                                          static_cast<const T*>(p.bias.data), probs.data, static_cast<T*>(nullptr),
                                          static_cast<T*>(nullptr), static_cast<T*>(nullptr),
                                          static_cast<T*>(nullptr), T(0)) /
             norm;
    }
    if (d_blocks_.numel() < 3 * n) d_blocks_ = tensor<T, typename B::memory>(shape{3 * n});
    if (d_h_.numel() < D * seq) d_h_ = tensor<T, typename B::memory>(shape{D * seq});
    tview d_blocks(d_blocks_.data(), {3, batch, seq, D}), d_h(d_h_.data(), {D, seq});
    B::fill(ctx, n, T(0), d_blocks.data + 2 * n);  // v is not in M
    const double loss = B::hyena_attention_alignment(
        ctx, batch, seq, D, head_dim, x0, x1, static_cast<const T*>(k.h.data), seq, static_cast<const T*>(p.bias.data),
        probs.data, d_blocks.data, d_blocks.data + n, d_h.data, g->bias.data, T(grad_scale / norm));
    op::backward_inputs(ctx, c, p, k, d_blocks, d_h, tview{}, *g);
    return loss / norm;
  }

 private:
  tensor<T, typename B::memory> d_blocks_, d_h_;  // scratch, kept between calls
};

}  // namespace hyena::train
