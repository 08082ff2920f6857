// train/distill.hpp: distilling an attention teacher into a Hyena student.
//
// The algorithm of "Scavenging Hyena" (Ralambomihanta et al., 2024), generic over the
// teacher and student types:
//   stage 0  scavenging: the student starts from the teacher's embeddings, norms, MLPs and
//            unembedding (models::make_student does this before the distiller runs);
//   stage 1  progressive layer-wise transfer, bottom to top: layer l's mixer learns to
//            reproduce the teacher's mixer output from the same input hidden state (MSE
//            normalised by the teacher activation's mean square), then is frozen; or, in
//            the block_output variant, the student's block output given its own lower layers;
//   stage 2  end to end: a*t^2*KL(teacher_t || student_t) + (1-a)*CE(labels)
//            + b * sum_l MSE(hidden states), every student parameter trainable unless frozen.
// The teacher always runs in inference mode: no caches, no gradients.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "../models/hooks.hpp"
#include "../models/student.hpp"
#include "../nn/loss.hpp"
#include "trainer.hpp"

namespace hyena::train {

enum class transfer_target { mixer_output, block_output };

struct distill_options {
  index_t batch = 8, seq = 256;
  std::uint64_t seed = 0;
  adamw_config adam{};
  double clip = 1.0;
  bool progress = true;
  // Student layer i learns from teacher layer layer_map[i]; empty: the identity when the
  // depths match, else evenly spread (the last student layer maps to the last teacher layer).
  std::vector<index_t> layer_map;

  // Stage 1
  index_t stage1_tokens_per_layer = 0;  // 0 skips stage 1
  double stage1_lr = 1e-3;
  transfer_target stage1_target = transfer_target::mixer_output;
  bool freeze_transferred = true;  // block_output variant: lower mixers stay frozen

  // Stage 2
  index_t stage2_tokens = 0;  // 0 skips stage 2
  double stage2_lr = 5e-4, stage2_min_lr = 5e-5;
  index_t stage2_warmup = 10;
  double tau = 2.0;    // temperature
  double alpha = 0.5;  // weight of the KL term (1 - alpha on cross-entropy)
  double beta = 0.0;   // weight of the hidden-state MSE
  bool freeze_shared = false;  // stage 2 trains only the mixers
  index_t eval_every = 0;
  eval_options eval{};
  std::string run_dir;  // stage 2 metrics and checkpoint
};

struct layer_transfer {
  index_t layer = 0, teacher_layer = 0, steps = 0;
  double first_loss = 0, last_loss = 0;  // normalised MSE, first and last step
};

struct distill_result {
  std::vector<layer_transfer> stage1;
  index_t stage1_tokens = 0;
  double stage1_seconds = 0;
  train_result stage2;
};

template <class Teacher, class Student>
class distiller {
 public:
  using T = typename Student::scalar;
  using B = typename Student::backend;
  using context = typename Student::context;
  using tview = view_of<B, T>;
  using block = typename Student::block_type;

  distiller(Teacher& teacher, Student& student, distill_options o) : t_(teacher), s_(student), o_(std::move(o)) {
    const auto &tc = t_.config(), &sc = s_.config();
    HYENA_CHECK(tc.hidden == sc.hidden && tc.vocab == sc.vocab, "distiller: teacher and student must share hidden (",
                tc.hidden, " vs ", sc.hidden, ") and vocab (", tc.vocab, " vs ", sc.vocab, ")");
    if (o_.layer_map.empty())
      for (index_t i = 0; i < sc.layers; ++i) o_.layer_map.push_back((i + 1) * tc.layers / sc.layers - 1);
    HYENA_CHECK(index_t(o_.layer_map.size()) == sc.layers, "distiller: layer_map has ", o_.layer_map.size(),
                " entries for ", sc.layers, " student layers");
    for (index_t m : o_.layer_map)
      HYENA_CHECK(m >= 0 && m < tc.layers, "distiller: layer_map entry ", m, " is not a teacher layer");
    HYENA_CHECK(o_.tau > 0 && o_.alpha >= 0 && o_.alpha <= 1 && o_.beta >= 0,
                "distiller: need tau > 0, alpha in [0, 1], beta >= 0");
  }

  const std::vector<index_t>& layer_map() const { return o_.layer_map; }

  distill_result run(context& ctx, io::token_span train_tokens, io::token_span valid_tokens = {}) {
    distill_result r;
    if (o_.stage1_tokens_per_layer > 0) {
      progress_bar timer("", 0, 0, false);
      for (index_t l = 0; l < s_.config().layers; ++l) r.stage1.push_back(transfer_layer(ctx, l, train_tokens));
      r.stage1_seconds = timer.seconds();
      r.stage1_tokens = stage1_steps() * o_.batch * o_.seq * s_.config().layers;
    }
    if (o_.stage2_tokens > 0) r.stage2 = end_to_end(ctx, train_tokens, valid_tokens);
    return r;
  }

  index_t stage1_steps() const { return std::max<index_t>(1, o_.stage1_tokens_per_layer / (o_.batch * o_.seq)); }

  // Stage 1 for one student layer.
  layer_transfer transfer_layer(context& ctx, index_t l, io::token_span tokens) {
    layer_transfer rec{l, o_.layer_map[l], stage1_steps()};
    const std::string mine = "blocks." + std::to_string(l) + ".mixer.";
    auto rule = [&](const std::string& name) {
      param_group g = default_group_rule(o_.adam)(name);
      bool lower_mixer = false;
      for (index_t j = 0; j < l && !o_.freeze_transferred; ++j)
        lower_mixer |= name.rfind("blocks." + std::to_string(j) + ".mixer.", 0) == 0;
      g.frozen = !(name.rfind(mine, 0) == 0 || lower_mixer);
      return g;
    };
    adamw<T> opt(param_entries<T>(s_.parameters(), s_.gradients(), s_.config()), o_.adam, rule);
    const auto entries = param_entries<T>(s_.parameters(), s_.gradients(), s_.config());
    cosine_schedule lr{o_.stage1_lr, o_.stage1_lr * 0.1, std::max<index_t>(1, rec.steps / 10), rec.steps};
    random_window_loader loader(tokens, o_.batch, o_.seq, o_.seed + 1000 * (l + 1));
    token_batch b(o_.batch, o_.seq);
    const shape act{o_.batch, o_.seq, s_.config().hidden};
    tensor<T, typename B::memory> t_in(act), t_out(act), d_out(act);
    t_.reserve(o_.batch, o_.seq, models::mode::infer);
    const bool standalone = o_.stage1_target == transfer_target::mixer_output;
    if (standalone) bind_block_cache();
    else s_.reserve(o_.batch, o_.seq, models::mode::train);
    const auto want = standalone ? models::hook_point::mixer_output : models::hook_point::block_output;
    models::hooks<T, typename B::memory> capture;
    capture.on_forward = [&](index_t layer, models::hook_point p, view_of<B, const T> a) {
      if (layer != rec.teacher_layer) return;
      if (p == models::hook_point::block_input) B::copy(ctx, a.numel(), a.data, t_in.data());
      if (p == want) B::copy(ctx, a.numel(), a.data, t_out.data());
    };
    progress_bar bar("stage 1, layer " + std::to_string(l), rec.steps, o_.batch * o_.seq, o_.progress);
    for (index_t step = 0; step < rec.steps; ++step) {
      loader.next(b);
      t_.forward(ctx, b.inputs.v(), &capture);
      s_.zero_grad();
      double loss = standalone ? mixer_step(ctx, l, t_in.v(), t_out.v(), d_out.v()) : block_step(ctx, l, b, t_out.v(), d_out.v());
      HYENA_CHECK(std::isfinite(loss), "distiller: stage 1 loss is not finite at layer ", l, " step ", step + 1);
      clip_grad_norm(entries, o_.clip);
      opt.step(lr(step + 1));
      if (step == 0) rec.first_loss = loss;
      rec.last_loss = loss;
      bar.update(step + 1, loss);
    }
    return rec;
  }

  // Stage 2: end-to-end distillation through the trainer.
  train_result end_to_end(context& ctx, io::token_span train_tokens, io::token_span valid_tokens) {
    trainer_options to;
    to.label = "stage 2";
    to.batch = o_.batch;
    to.seq = o_.seq;
    to.steps = std::max<index_t>(1, o_.stage2_tokens / (o_.batch * o_.seq));
    to.warmup = o_.stage2_warmup;
    to.lr = o_.stage2_lr;
    to.min_lr = o_.stage2_min_lr;
    to.clip = o_.clip;
    to.adam = o_.adam;
    to.seed = o_.seed;
    to.eval_every = o_.eval_every;
    to.eval = o_.eval;
    to.run_dir = o_.run_dir;
    to.progress = o_.progress;
    auto rule = [this](const std::string& name) {
      param_group g = default_group_rule(o_.adam)(name);
      if (o_.freeze_shared && !models::is_mixer_parameter(name)) g.frozen = true;
      return g;
    };
    trainer<Student> tr(s_, to, rule);
    t_.reserve(o_.batch, o_.seq, models::mode::infer);
    const shape logits_shape{o_.batch, o_.seq, s_.config().vocab};
    tensor<T, typename B::memory> ce_grad(logits_shape);
    const shape act{o_.batch, o_.seq, s_.config().hidden};
    std::vector<tensor<T, typename B::memory>> t_hidden;
    if (o_.beta > 0)
      for (index_t i = 0; i < s_.config().layers; ++i) t_hidden.emplace_back(act);
    return tr.run(ctx, train_tokens, valid_tokens, [&](context& c, token_batch& b, double scale) {
      models::hooks<T, typename B::memory> capture;
      if (o_.beta > 0)
        capture.on_forward = [&](index_t layer, models::hook_point p, view_of<B, const T> a) {
          if (p != models::hook_point::block_output) return;
          for (index_t i = 0; i < index_t(o_.layer_map.size()); ++i)
            if (o_.layer_map[i] == layer) B::copy(c, a.numel(), a.data, t_hidden[i].data());
        };
      auto t_logits = t_.forward(c, b.inputs.v(), &capture);
      auto s_logits = s_.forward(c, b.inputs.v());
      tview dlogits = s_.dlogits();
      double kl = nn::kl_div_loss<B>(c, t_logits, s_logits, o_.tau, dlogits);
      double ce = nn::cross_entropy_loss<B>(c, s_logits, b.targets.v(), ce_grad.v());
      scale_into(dlogits, o_.alpha * scale, ce_grad.v(), (1 - o_.alpha) * scale);
      double loss = o_.alpha * kl + (1 - o_.alpha) * ce;
      models::hooks<T, typename B::memory> extra;
      if (o_.beta > 0) {
        for (index_t i = 0; i < s_.config().layers; ++i)
          loss += o_.beta * nn::mse_loss<B>(c, s_.activation(i, models::hook_point::block_output), t_hidden[i].v());
        extra.on_backward = [&](index_t layer, models::hook_point p, tview g) {
          if (p != models::hook_point::block_output) return;
          auto s_out = s_.activation(layer, p);
          tensor<T, typename B::memory> d(g.shape);
          nn::mse_loss<B>(c, s_out, t_hidden[layer].v(), d.v());
          B::axpy(c, g.numel(), T(o_.beta * scale), d.data(), g.data);
        };
      }
      s_.backward(c, o_.beta > 0 ? &extra : nullptr);
      return loss;
    });
  }

 private:
  // a = sa * a + sb * b (host memory)
  static void scale_into(tview a, double sa, view_of<B, const T> b, double sb) {
    for (index_t i = 0; i < a.numel(); ++i) a.data[i] = static_cast<T>(sa * a.data[i] + sb * b.data[i]);
  }

  void bind_block_cache() {
    if (cache_bound_) return;
    cache_arena_.bind(cache_, s_.config(), o_.batch, o_.seq);
    cache_bound_ = true;
  }

  // Student mixer l on norm1(teacher block input) against the teacher's mixer output.
  double mixer_step(context& ctx, index_t l, tview t_in, tview t_out, tview d_out) {
    const auto& c = s_.config();
    auto& p = s_.parameters().blocks[l];
    auto& g = s_.gradients().blocks[l];
    block::norm::forward(ctx, block::norm_config(c), p.norm1, cache_.norm1, t_in, cache_.norm1_out);
    block::mixer::forward(ctx, block::mixer_config(c), p.mix, cache_.mix, cache_.norm1_out, cache_.mixer_out);
    const double scale = mean_square(t_out);
    double loss = nn::mse_loss<B>(ctx, cache_.mixer_out, t_out, d_out) / scale;
    for (index_t i = 0; i < d_out.numel(); ++i) d_out.data[i] = static_cast<T>(d_out.data[i] / scale);
    block::mixer::backward(ctx, block::mixer_config(c), p.mix, cache_.mix, d_out, tview{}, g.mix);
    return loss;
  }

  // The student's own forward up to block l's output against the teacher's.
  double block_step(context& ctx, index_t l, token_batch& b, tview t_out, tview d_out) {
    s_.forward(ctx, b.inputs.v());
    auto s_out = s_.activation(l, models::hook_point::block_output);
    const double scale = mean_square(t_out);
    double loss = nn::mse_loss<B>(ctx, s_out, t_out, d_out) / scale;
    auto dl = s_.dlogits();
    std::fill(dl.data, dl.data + dl.numel(), T(0));
    models::hooks<T, typename B::memory> h;
    h.on_backward = [&](index_t layer, models::hook_point p, tview g) {
      if (layer == l && p == models::hook_point::block_output) B::axpy(ctx, g.numel(), T(1 / scale), d_out.data, g.data);
    };
    s_.backward(ctx, &h);
    return loss;
  }

  static double mean_square(tview v) {
    double s = 0;
    for (index_t i = 0; i < v.numel(); ++i) s += double(v.data[i]) * v.data[i];
    return std::max(s / double(std::max<index_t>(1, v.numel())), 1e-12);
  }

  Teacher& t_;
  Student& s_;
  distill_options o_;
  typename block::cache cache_;
  arena<T, typename B::memory> cache_arena_;
  bool cache_bound_ = false;
};

}  // namespace hyena::train
