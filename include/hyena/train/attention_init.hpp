// train/attention_init.hpp: stage 0 of the distillation: start each Hyena mixer from the
// teacher's attention in the same layer, so the first forward already approximates it.
//
// With both gates held at 1 an order-2 Hyena operator is a fixed Toeplitz attention,
//   y = out_proj( T_h v ),   (T_h v)_t = sum_{s <= t} h[t - s] v_s   (+ D v_t),
// and attention is y = O (P V x) with a content-dependent P. So (Mamba-in-the-Llama and
// LoLCATs start their new mixers from the attention weights the same way):
//   v block of in_proj  <- V (with its bias); under grouped-query attention every channel of
//                          query head h reads kv head h / (heads / kv_heads)
//   out_proj            <- O (with its bias)
//   x_0 .. x_{N-1}      <- 1: zero weights, bias 1 (gates = ones), or the linear-attention
//                          reading x_0 <- q, x_1 <- k of the channel's head (gates = qk)
//   short conv          <- the identity tap (weight [0 .. 0 1], bias 0)
//   filter h_1 of channel c <- the Toeplitz projection of its head's attention matrices: the
//                          mean attention weight at each lag k over sampled teacher inputs,
//                          hbar[k] = mean_{b, t >= k} P[b, t, t - k], the best Toeplitz
//                          approximation in the Frobenius norm. The implicit filter is fitted
//                          to it by Adam on its own parameters; D_1 takes the lag-0 remainder,
//                          so lag 0 is exact.
// Orders N > 2 (documented extension): filters h_2 .. h_{N-1} are fitted to 0 with D_i = 1,
// so those steps are the identity and the operator starts as the order-2 one.
// Rank R > 1: branch 0 is the order-2 start above. The others (branches = off) start switched
// off but ready to learn the content-dependent part, as a LoRA update starts at zero: x0_r <- 0
// (zero weights and bias, so the operator's output is exactly branch 0's), x1_r keeps its random
// weights with bias 1 (about 1, different per branch, so the branches' gradients differ), and
// h_r, D_r take the same Toeplitz fit as branch 0. Or (branches = taylor) they start as the
// first-order term of softmax around the Toeplitz mean, P[t, s] ~ hbar[t-s] (1 + gamma S[t, s]),
// with the rotary score S = q_t' . k_s' / sqrt(d) written as products of one q and one k
// coordinate: for rotary pair (a, b) = (i, i + rot/2) turned by theta_i per position,
//   q_t' . k_s' = cos(theta lag) (q_a k_a + q_b k_b) + sin(theta lag) (q_a k_b - q_b k_a),
// so four branches per pair (x0 <- q_a, x1 <- k_a, h <- gamma hbar cos(theta lag) / sqrt(d), ...)
// and one per un-rotated coordinate, d + rot branches in all; branches past those start off.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "../tensor/transfer.hpp"
#include "../models/causal_lm.hpp"
#include "../nn/attention.hpp"
#include "../nn/hyena.hpp"
#include "adamw.hpp"
#include "data_loader.hpp"
#include "progress.hpp"

namespace hyena::train {

template <class M>
inline constexpr bool is_attention_mixer = false;
template <class B, class T>
inline constexpr bool is_attention_mixer<nn::attention<B, T>> = true;
template <class M>
inline constexpr bool is_hyena_mixer = false;
template <class B, class T>
inline constexpr bool is_hyena_mixer<nn::hyena_operator<B, T>> = true;

enum class gate_init { ones, qk };
enum class branch_init { off, taylor };  // rank > 1: the branches after the first (see the header)

// "off" or "taylor", as a user types it.
inline branch_init parse_branch_init(const std::string& name) {
  HYENA_CHECK(name == "off" || name == "taylor", "attention init: branches must be off or taylor, got '", name, "'");
  return name == "taylor" ? branch_init::taylor : branch_init::off;
}

struct attention_init_options {
  gate_init gates = gate_init::ones;
  branch_init branches = branch_init::off;
  double taylor_scale = 1.0;       // gamma of branches = taylor
  index_t batches = 8;             // teacher batches whose attention gives the lag profile
  index_t filter_fit_steps = 400;  // Adam steps fitting each layer's implicit filter
  double filter_fit_lr = 1e-2;
};

// Per teacher layer, the mean attention weight at each lag, (heads, seq) row-major:
// profile[l][h * seq + k] = mean over batch rows and query positions t >= k of P[t, t - k].
struct lag_profile {
  index_t heads = 0, seq = 0;
  std::vector<std::vector<double>> layers;
  double at(index_t layer, index_t head, index_t lag) const {
    return layers.at(std::size_t(layer))[std::size_t(head * seq + lag)];
  }
};

// One first-order term of a head's rotary attention score (see the header): the product of
// q coordinate q_dim at the query and k coordinate k_dim at the key, modulated over the lag by
// sign * cos(theta lag) or sign * sin(theta lag).
struct score_term {
  index_t q_dim = 0, k_dim = 0;
  double theta = 0, sign = 1;
  bool sine = false;
  double at(index_t lag) const { return sign * (sine ? std::sin(theta * double(lag)) : std::cos(theta * double(lag))); }
};

// Every term of q' . k' for a head of head_dim coordinates whose first rot_dims turn in
// rotate-half pairs (nn/rotary.hpp): 4 per pair, then 1 per un-rotated coordinate.
inline std::vector<score_term> rotary_score_terms(index_t head_dim, index_t rot_dims, double base) {
  std::vector<score_term> out;
  const index_t half = rot_dims / 2;
  for (index_t i = 0; i < half; ++i) {
    const double theta = std::pow(base, -2.0 * double(i) / double(rot_dims));
    const index_t a = i, b = i + half;
    out.push_back({a, a, theta, 1, false});
    out.push_back({b, b, theta, 1, false});
    out.push_back({a, b, theta, 1, true});
    out.push_back({b, a, theta, -1, true});
  }
  for (index_t i = rot_dims; i < head_dim; ++i) out.push_back({i, i, 0.0, 1, false});
  return out;
}

// Measures the teacher's lag profile on `batches` random windows of `tokens`. The teacher
// runs in training mode (every layer's attention cache kept) and is left so.
template <class Teacher>
lag_profile measure_lag_profile(Teacher& t, typename Teacher::context& ctx, io::token_span tokens, index_t batch,
                                index_t seq, index_t batches, std::uint64_t seed) {
  using B = typename Teacher::backend;
  using T = typename Teacher::scalar;
  static_assert(is_attention_mixer<typename Teacher::block_type::mixer>,
                "measure_lag_profile: the teacher's mixer must be nn::attention");
  const auto& c = t.config();
  const index_t H = c.heads;
  lag_profile out{H, seq, std::vector<std::vector<double>>(std::size_t(c.layers),
                                                           std::vector<double>(std::size_t(H * seq), 0.0))};
  t.reserve(batch, seq, models::mode::train);
  random_window_loader loader(tokens, batch, seq, seed);
  staged_batch<typename B::memory> staged(batch, seq);
  tensor<T, typename B::memory> probs(shape{batch, H, seq, seq});
  tensor<double, typename B::memory> sums(shape{c.layers, H * seq});  // per layer, where the model lives
  sums.zero();
  const auto ac = nn::attention_config::from(c);
  const T scale = static_cast<T>(1.0 / std::sqrt(double(ac.head_dim())));
  for (index_t i = 0; i < batches; ++i) {
    loader.next(staged.host());
    t.forward_to(ctx, staged.ready().inputs.v(), c.layers);
    for (index_t l = 0; l < c.layers; ++l) {
      const auto& k = t.acts().blocks[std::size_t(l)].mix;
      B::causal_attention_probs(ctx, batch, seq, H, c.kv_heads, ac.head_dim(), scale,
                                static_cast<const T*>(k.qkv.data), ac.qkv_dim(), static_cast<const T*>(k.lse.data),
                                probs.data());
      B::attention_lag_sums(ctx, batch, H, seq, static_cast<const T*>(probs.data()), sums.data() + l * H * seq);
    }
  }
  for (index_t l = 0; l < c.layers; ++l) copy_to_host(sums.v().slice(l, l + 1), out.layers[std::size_t(l)].data());
  for (auto& layer : out.layers)
    for (index_t h = 0; h < H; ++h)
      for (index_t k = 0; k < seq; ++k) layer[std::size_t(h * seq + k)] /= double(batches * batch * (seq - k));
  return out;
}

// Fits filter `p` (its channels: (order - 1) * hidden) to `target` ((channels, seq) row-major)
// by Adam on the filter's own parameters; `g` is its gradient struct (overwritten). Returns
// the relative error ||h - target||^2 / ||target||^2 and leaves h in `h_out`.
template <class B, class T>
double fit_implicit_filter(typename B::context& ctx, const nn::implicit_filter_config& fc,
                           typename nn::implicit_filter<B, T>::params& p, typename nn::implicit_filter<B, T>::params& g,
                           const std::vector<double>& target, index_t seq, index_t steps, double lr,
                           std::vector<double>& h_out) {
  using filt = nn::implicit_filter<B, T>;
  typename filt::cache k;
  arena<T, typename B::memory> cache_arena;
  cache_arena.bind(k, fc, index_t(1), seq);
  tensor<T, typename B::memory> h(shape{fc.channels, seq}), dh(shape{fc.channels, seq});
  std::vector<T> h_host, dh_host(static_cast<std::size_t>(h.numel()));
  adamw_config ac;
  ac.weight_decay = 0;
  adamw<T, B> opt(param_entries<T, typename B::memory>(p, g, fc), ac, [](const std::string&) { return param_group{}; });
  double norm = 0;
  for (double v : target) norm += v * v;
  norm = std::max(norm, 1e-30);
  double err = 0;
  for (index_t step = 0; step <= steps; ++step) {
    filt::forward(ctx, fc, p, k, seq, h.v());
    h_host = to_host_vector(h.v());  // the loss is computed on the host: the filter is small
    err = 0;
    for (std::size_t i = 0; i < h_host.size(); ++i) {
      const double d = double(h_host[i]) - target[i];
      err += d * d;
      dh_host[i] = static_cast<T>(2 * d / norm);
    }
    if (step == steps) break;
    copy_from_host(dh.v(), dh_host.data());
    for_each_tensor<T, typename B::memory>(g, [&](const std::string&, view_of<B, T>& v, const shape&) {
      B::fill(ctx, v.numel(), T(0), v.data);
    }, fc);
    filt::backward(ctx, fc, p, k, dh.v(), g);
    // Cosine decay to a tenth, so the fit settles.
    const double rate = lr * (0.55 + 0.45 * std::cos(3.141592653589793 * double(step) / double(steps)));
    opt.step(ctx, rate);
  }
  h_out.assign(h_host.begin(), h_host.end());
  return err / norm;
}

// Stage 0: every student mixer l from teacher layer layer_map[l]'s attention (see the header).
// Returns the relative filter-fit error of each layer.
template <class Teacher, class Student>
std::vector<double> init_student_from_attention(typename Student::context& ctx, Teacher& teacher, Student& student,
                                                const lag_profile& profile, const std::vector<index_t>& layer_map,
                                                const attention_init_options& o, bool progress = false) {
  using B = typename Student::backend;
  using T = typename Student::scalar;
  using hyena_t = typename Student::block_type::mixer;
  static_assert(is_attention_mixer<typename Teacher::block_type::mixer>,
                "init_student_from_attention: the teacher's mixer must be nn::attention");
  static_assert(is_hyena_mixer<hyena_t>, "init_student_from_attention: the student's mixer must be nn::hyena_operator");
  const auto& tc = teacher.config();
  const auto& sc = student.config();
  const auto ac = nn::attention_config::from(tc);
  const auto hc = Student::block_type::mixer_config(sc);
  const index_t D = sc.hidden, R = hc.rank, nb = hc.blocks(), Dh = ac.head_dim(), H = ac.heads, KV = ac.kv_heads;
  const index_t seq = profile.seq;
  HYENA_CHECK(tc.hidden == sc.hidden, "attention init: teacher and student widths differ (", tc.hidden, " vs ",
              sc.hidden, ")");
  HYENA_CHECK(seq <= sc.max_seq, "attention init: the lag profile's length ", seq, " exceeds the student's max_seq ",
              sc.max_seq);
  const std::vector<score_term> terms = o.branches == branch_init::taylor
                                            ? rotary_score_terms(Dh, ac.rot_dims(), ac.rotary_base)
                                            : std::vector<score_term>();
  std::vector<double> errors;
  progress_bar bar("stage 0, attention init", sc.layers, 0, progress);
  for (index_t l = 0; l < sc.layers; ++l) {
    const index_t tl = layer_map.at(std::size_t(l));
    auto& a = teacher.block_parameters(tl).mix;
    auto& p = student.block_parameters(l).mix;
    auto& g = student.block_gradients(l).mix;
    // in_proj: gates, then v (the last block). Weight rows are copied by the backend; the biases
    // are assembled on the host (the teacher's qkv bias and the student's own read back) and
    // copied once.
    const std::vector<T> qkv_bias = a.qkv.bias.empty() ? std::vector<T>() : to_host_vector(a.qkv.bias);
    std::vector<T> in_bias = to_host_vector(p.in_proj.bias);
    auto bias_of = [&](index_t src) { return qkv_bias.empty() ? T(0) : qkv_bias[std::size_t(src)]; };
    const index_t x1_block = R > 1 ? R : 1;  // branch 0's second gate
    // Branch r > 0's score term under branches = taylor (nullptr: the branch starts off).
    auto term_of = [&](index_t r) -> const score_term* {
      return r > 0 && std::size_t(r - 1) < terms.size() ? &terms[std::size_t(r - 1)] : nullptr;
    };
    for (index_t j = 0; j + 1 < nb; ++j) {
      const index_t branch = R > 1 ? j % R : 0;
      const score_term* term = R > 1 && j != 0 && j != R ? term_of(branch) : nullptr;
      const bool off = R > 1 && j > 0 && j < R && !term;       // x0_r, r > 0: zero
      const bool about_one = R > 1 && j > R && !term;          // x1_r, r > 0: random weights, bias 1
      for (index_t c = 0; c < D; ++c) {
        T* row = p.in_proj.weight.data + (j * D + c) * D;
        const index_t head = c / Dh, i = c % Dh;
        index_t src = -1;  // qkv row the gate copies (qk reading, a score term), -1 for a constant 1
        if (o.gates == gate_init::qk && j == 0) src = head * Dh + i;
        if (o.gates == gate_init::qk && j == x1_block) src = (H + head / (H / KV)) * Dh + i;
        if (term && j < R) src = head * Dh + term->q_dim;
        if (term && j > R) src = (H + head / (H / KV)) * Dh + term->k_dim;
        if (about_one) {
          in_bias[std::size_t(j * D + c)] = T(1);
        } else if (src < 0) {
          B::fill(ctx, D, T(0), row);
          in_bias[std::size_t(j * D + c)] = off ? T(0) : T(1);
        } else {
          B::copy(ctx, D, static_cast<const T*>(a.qkv.weight.data + src * D), row);
          in_bias[std::size_t(j * D + c)] = bias_of(src);
        }
      }
    }
    const index_t vb = nb - 1;
    for (index_t c = 0; c < D; ++c) {
      const index_t src = (H + KV + (c / Dh) / (H / KV)) * Dh + c % Dh;
      B::copy(ctx, D, static_cast<const T*>(a.qkv.weight.data + src * D), p.in_proj.weight.data + (vb * D + c) * D);
      in_bias[std::size_t(vb * D + c)] = bias_of(src);
    }
    copy_from_host(p.in_proj.bias, in_bias.data());
    B::copy(ctx, D * D, static_cast<const T*>(a.out.weight.data), p.out_proj.weight.data);
    if (a.out.bias.empty()) B::fill(ctx, D, T(0), p.out_proj.bias.data);
    else B::copy(ctx, D, static_cast<const T*>(a.out.bias.data), p.out_proj.bias.data);
    // The short conv passes every channel through unchanged.
    const index_t K = hc.short_filter, width = hc.width();
    std::vector<T> taps(static_cast<std::size_t>(width * K), T(0));
    for (index_t c = 0; c < width; ++c) taps[std::size_t(c * K + K - 1)] = T(1);
    copy_from_host(p.short_filter.weight, taps.data());
    B::fill(ctx, width, T(0), p.short_filter.bias.data);
    // Filters: h_1 (every branch's at rank R) the Toeplitz projection of the channel's head,
    // times gamma / sqrt(d) and its modulation for a score term; h_2.. zero.
    const index_t convs = hc.convs(), fitted = R > 1 ? R : 1;
    std::vector<double> target(std::size_t(convs * D * seq), 0.0), h;
    for (index_t r = 0; r < fitted; ++r) {
      const score_term* term = term_of(r);
      const double scale = term ? o.taylor_scale / std::sqrt(double(Dh)) : 1.0;
      for (index_t c = 0; c < D; ++c)
        for (index_t k = 0; k < seq; ++k)
          target[std::size_t((r * D + c) * seq + k)] = profile.at(tl, c / Dh, k) * scale * (term ? term->at(k) : 1.0);
    }
    errors.push_back(fit_implicit_filter<B, T>(ctx, hc.filter(), p.filter, g.filter, target, seq, o.filter_fit_steps,
                                               o.filter_fit_lr, h));
    std::vector<T> skip(static_cast<std::size_t>(p.bias.numel()));
    for (index_t i = 0; i < convs; ++i)
      for (index_t c = 0; c < D; ++c) {
        const std::size_t at = std::size_t((i * D + c) * seq);
        skip[std::size_t(i * D + c)] = static_cast<T>((i < fitted ? target[at] : 1.0) - h[at]);
      }
    copy_from_host(p.bias, skip.data());
    bar.update(l + 1, errors.back());
  }
  student.zero_grad();
  return errors;
}

}  // namespace hyena::train
