// train/distill.hpp: distilling an attention teacher into a Hyena student.
//
// The algorithm of "Scavenging Hyena" (Ralambomihanta et al., 2024) with the initialisation
// and operator alignment of the newer conversions (MOHAWK, Bick et al. 2024; Mamba-in-the-
// Llama, Wang et al. 2024), generic over the teacher and student types:
//   stage 0  the student starts from the teacher's embeddings, norms, MLPs and unembedding
//            (models::make_student); with init = attention, every Hyena mixer also starts
//            from its layer's attention (train/attention_init.hpp);
//   stage 1  layer by layer, bottom to top: operator alignment (the Hyena mixing matrices
//            against the attention matrices, train/operator_alignment.hpp), then output
//            alignment: the mixer output from the teacher's input to that layer (MSE over the
//            teacher activation's mean square), or, in the block_output variant, the student's
//            block output given its own lower layers. Only layer l's mixer trains; nothing
//            above layer l runs, in the teacher or the student;
//   stage 2  end to end: alpha tau^2 D(teacher_tau, student_tau) + (1 - alpha) CE(labels)
//            + beta sum_l MSE(hidden states), D the forward KL, the reverse KL or the KL over
//            the teacher's top k tokens; every student parameter trainable unless frozen.
// Every stage is a step function driven by the trainer's loop (progress, metrics.jsonl,
// checkpoints, exact resume): one labelled run per layer and part of stage 1, then stage 2,
// all in one run folder. A rerun resumes in the stage its checkpoint was written by.
// The teacher always runs in inference mode: no caches, no gradients.
// Data parallel (o.train.comm): every stage is data parallel through the trainer; the teacher's
// forward is local to each rank; rank 0 alone reads the run folder's checkpoint label, prints
// and writes metrics.
#pragma once
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "../models/hooks.hpp"
#include "../models/student.hpp"
#include "../nn/loss.hpp"
#include "attention_init.hpp"
#include "operator_alignment.hpp"
#include "trainer.hpp"

namespace hyena::train {

enum class transfer_target { mixer_output, block_output };
enum class student_init { random, attention };
enum class kd_divergence { forward, reverse, topk };

// Stage 2's learning rates in the measured recipe (docs/results.md section 3).
inline trainer_options recommended_stage2() {
  trainer_options t;
  t.label = "stage 2";
  t.lr = 2e-3;
  t.min_lr = 2e-4;
  return t;
}

// The defaults are the recipe the ablation in docs/results.md measured best: mixers from the
// teacher's attention, then end to end on 0.8 forward KL + 0.2 cross-entropy at tau 1, plus
// the hidden-state MSE of every block at weight 1.
struct distill_options {
  // Stage 2's run (its steps, lr, min_lr, warmup; steps = 0 skips stage 2) and what every
  // stage shares: batch, seq, seed, optimizer, clipping, run_dir, checkpoints, progress.
  // train.stop_after counts the steps of the whole distillation call (tests of resume).
  trainer_options train = recommended_stage2();
  // Student layer i learns from teacher layer layer_map[i]; empty: the identity when the
  // depths match, else evenly spread (the last student layer maps to the last teacher layer).
  std::vector<index_t> layer_map;

  // Stage 0
  student_init init = student_init::attention;
  attention_init_options attention{};

  // Stage 1
  index_t stage1_steps_per_layer = 0;     // 0 skips stage 1
  double stage1_operator_fraction = 0.5;  // of each layer's steps, operator alignment first
  double stage1_lr = 3e-3;
  transfer_target stage1_target = transfer_target::mixer_output;
  bool freeze_transferred = true;  // block_output variant: lower mixers stay frozen
  index_t fit_batches = 2;         // batches of the per-layer fit report (0: no report)

  // Stage 2
  kd_divergence kd = kd_divergence::forward;
  index_t kd_topk = 32;  // k of kd_divergence::topk
  double tau = 1.0;      // temperature
  double alpha = 0.8;    // weight of the divergence (1 - alpha on cross-entropy)
  // Weight of the hidden-state MSE (every student block's output against its teacher layer's).
  // 1 since its ablation (docs/results.md section 3: rank 4, 1M stories260K tokens, held-out
  // ppl 4.689 -> 4.59; WikiText-2 4.358 -> 4.174) at 20-30% more time per step; 0 turns it off.
  double beta = 1.0;
  bool freeze_shared = false;  // stage 2 trains only the mixers
};

// One labelled stage-1 run: a layer's operator or output alignment.
struct layer_transfer {
  index_t layer = 0, teacher_layer = 0, steps = 0;
  std::string part;                      // "operator" or "output"
  double first_loss = 0, last_loss = 0;  // normalised, first and last step of this call
};

// How well each student mixer matches its teacher layer, on held-out batches: normalised
// operator error ||M - P||^2 / ||P||^2 (NaN where it does not apply) and normalised
// mixer-output error ||y_s - y_t||^2 / ||y_t||^2, both given the teacher's input.
struct layer_fit {
  index_t layer = 0, teacher_layer = 0;
  double operator_error = std::numeric_limits<double>::quiet_NaN(), output_error = 0;
};

struct distill_result {
  std::vector<double> filter_fit;      // stage 0: relative error of each layer's fitted filter
  std::vector<layer_fit> fit_initial;  // after stage 0
  std::vector<layer_fit> fit;          // after stage 1 (when it ran)
  std::vector<layer_fit> fit_final;    // after stage 2 (when it ran)
  std::vector<layer_transfer> stage1;
  index_t stage1_tokens = 0;
  double stage0_seconds = 0, stage1_seconds = 0;
  train_result stage2;
};

// The share of a student-token budget that stage 1 gets by default. The ablation in
// docs/results.md measured stage 1 (operator or output alignment) as no better per token than
// spending those tokens end to end once the mixers start from attention, so it is 0; stage 1
// runs when a caller gives it a share.
inline constexpr double recommended_stage1_fraction = 0.0;

// The Hyena rank that `hyena distill` and the demo give an order-2 student by default
// (nn::hyena_hparams::rank; the library's own default stays 1, the paper's operator). In the
// ablation (docs/results.md section 3) rank 4 beat rank 1 at equal tokens on every suite and
// budget: held-out ppl 4.689 against 4.821 on stories260K at 1M tokens, 4.992 against 5.147 on
// WikiText-2 bytes at 600k. The price: up to 1.7x the training time per token (the demo's
// shape). Higher ranks gain a little more (4.623 at 16) for R times the filters and gates.
inline constexpr index_t recommended_rank = 4;

// "forward", "reverse" or "topk:K" (the --kd spelling) into o.kd and o.kd_topk.
inline void parse_kd(const std::string& s, distill_options& o) {
  if (s == "forward") o.kd = kd_divergence::forward;
  else if (s == "reverse") o.kd = kd_divergence::reverse;
  else if (s.rfind("topk:", 0) == 0) {
    o.kd = kd_divergence::topk;
    try {
      std::size_t used = 0;
      o.kd_topk = std::stoll(s.substr(5), &used);
      HYENA_CHECK(used == s.size() - 5 && o.kd_topk >= 1, "");
    } catch (const std::exception&) {
      HYENA_FAIL("distill: '", s, "' is not topk:K with a whole K >= 1");
    }
  } else {
    HYENA_FAIL("distill: unknown divergence '", s, "' (expected forward, reverse or topk:K)");
  }
}

// Splits a budget of `student_tokens` between the stages: `stage1_fraction` of it over the
// `layers` layers of stage 1, the rest to stage 2, in whole steps of o.train.tokens_per_step().
inline void set_token_budget(distill_options& o, index_t student_tokens, index_t layers, double stage1_fraction) {
  HYENA_CHECK(student_tokens > 0 && layers > 0 && stage1_fraction >= 0 && stage1_fraction <= 1,
              "distill: need a positive token budget and layer count and a stage-1 fraction in [0, 1], got ",
              student_tokens, ", ", layers, ", ", stage1_fraction);
  const index_t step = o.train.tokens_per_step();
  const index_t total_steps = std::max<index_t>(1, student_tokens / step);
  o.stage1_steps_per_layer = index_t(double(total_steps) * stage1_fraction) / layers;
  o.train.steps = total_steps - o.stage1_steps_per_layer * layers;
}

inline const char* to_string(kd_divergence d) {
  switch (d) {
    case kd_divergence::forward: return "forward";
    case kd_divergence::reverse: return "reverse";
    case kd_divergence::topk: return "topk";
  }
  return "?";
}

template <class Teacher, class Student>
class distiller {
 public:
  using T = typename Student::scalar;
  using B = typename Student::backend;
  using context = typename Student::context;
  using tview = view_of<B, T>;
  using ctview = view_of<B, const T>;
  using sblock = typename Student::block_type;
  using tblock = typename Teacher::block_type;
  static constexpr bool attention_teacher = is_attention_mixer<typename tblock::mixer>;
  static constexpr bool hyena_student = is_hyena_mixer<typename sblock::mixer>;

  distiller(Teacher& teacher, Student& student, distill_options o) : t_(teacher), s_(student), o_(std::move(o)) {
    const auto& tc = t_.config();
    const auto& sc = s_.config();
    HYENA_CHECK(tc.hidden == sc.hidden && tc.vocab == sc.vocab, "distiller: teacher and student must share hidden (",
                tc.hidden, " vs ", sc.hidden, ") and vocab (", tc.vocab, " vs ", sc.vocab, ")");
    if (!comm().is_root()) o_.train.progress = false;  // rank 0 alone speaks
    if (o_.layer_map.empty())
      for (index_t i = 0; i < sc.layers; ++i) o_.layer_map.push_back((i + 1) * tc.layers / sc.layers - 1);
    HYENA_CHECK(index_t(o_.layer_map.size()) == sc.layers, "distiller: layer_map has ", o_.layer_map.size(),
                " entries for ", sc.layers, " student layers");
    for (index_t m : o_.layer_map)
      HYENA_CHECK(m >= 0 && m < tc.layers, "distiller: layer_map entry ", m, " is not a teacher layer");
    HYENA_CHECK(o_.tau > 0 && o_.alpha >= 0 && o_.alpha <= 1 && o_.beta >= 0,
                "distiller: need tau > 0, alpha in [0, 1], beta >= 0");
    HYENA_CHECK(o_.kd != kd_divergence::topk || o_.kd_topk >= 1, "distiller: top-k KL needs k >= 1");
    HYENA_CHECK(o_.stage1_steps_per_layer >= 0 && o_.train.steps >= 0, "distiller: step counts must be >= 0");
    HYENA_CHECK(o_.stage1_operator_fraction >= 0 && o_.stage1_operator_fraction <= 1,
                "distiller: stage1_operator_fraction must be in [0, 1]");
    HYENA_CHECK(o_.train.batch > 0 && o_.train.seq > 0 && o_.train.seq <= std::min(tc.max_seq, sc.max_seq),
                "distiller: batch must be positive and seq in [1, max_seq]");
    if (o_.init == student_init::attention || operator_steps() > 0) {
      if constexpr (!(attention_teacher && hyena_student))
        HYENA_FAIL("distiller: attention initialisation and operator alignment need an attention teacher and a ",
                   "Hyena student (use init = random and stage1_operator_fraction = 0)");
    }
    if (operator_steps() > 0) {
      HYENA_CHECK(single_mixing_matrix(), "distiller: operator alignment is ",
                  "defined for order-2, rank-1 Hyena operators, the student's are order ", s_.config().mixer.order,
                  ", rank ", s_.config().mixer.rank, " (use stage1_operator_fraction = 0)");
    }
  }

  const std::vector<index_t>& layer_map() const { return o_.layer_map; }
  const distill_options& options() const { return o_; }

  // Whether the student's mixer has the one mixing matrix diag(x0) T_h diag(x1) per channel
  // that operator alignment fits (a Hyena operator of order 2 and rank 1).
  bool single_mixing_matrix() const { return s_.config().mixer.order == 2 && s_.config().mixer.rank == 1; }

  // Stage-1 steps per layer spent on operator alignment, and on output alignment.
  index_t operator_steps() const {
    if (o_.stage1_steps_per_layer == 0) return 0;
    return index_t(std::llround(double(o_.stage1_steps_per_layer) * o_.stage1_operator_fraction));
  }
  index_t output_steps() const { return o_.stage1_steps_per_layer - operator_steps(); }
  // Student tokens every stage together will train on.
  index_t total_tokens() const {
    return (o_.stage1_steps_per_layer * s_.config().layers + o_.train.steps) * o_.train.tokens_per_step();
  }

  // The plan in a few lines, for a user before the run starts.
  std::string describe() const {
    std::ostringstream os;
    const index_t per_step = o_.train.tokens_per_step(), layers = s_.config().layers;
    os << "distillation plan: " << total_tokens() << " student tokens (" << per_step << " per step: batch "
       << o_.train.batch << " x seq " << o_.train.seq << " x accumulation " << o_.train.grad_accum;
    if (o_.train.ranks() > 1) os << " x " << o_.train.ranks() << " ranks";
    os << ")\n";
    os << "  stage 0: shared weights copied from the teacher; mixers "
       << (o_.init == student_init::attention
               ? std::string("from the teacher's attention (v, out_proj; gates ") +
                     (o_.attention.gates == gate_init::ones ? "1" : "q, k") + "; Toeplitz filters)"
               : std::string("initialised at random"));
    if constexpr (hyena_student) {
      if (o_.init == student_init::attention && s_.config().mixer.rank > 1)
        os << "; rank " << s_.config().mixer.rank << ": branches after the first "
           << (o_.attention.branches == branch_init::taylor ? "as the softmax score's first-order terms"
                                                            : "off (x0 = 0)");
    }
    os << "\n";
    if (o_.stage1_steps_per_layer > 0)
      os << "  stage 1: " << layers << " layers x " << o_.stage1_steps_per_layer << " steps (" << operator_steps()
         << " operator alignment, " << output_steps() << " "
         << (o_.stage1_target == transfer_target::mixer_output ? "mixer-output" : "block-output")
         << " alignment), lr " << o_.stage1_lr << ": " << o_.stage1_steps_per_layer * layers * per_step
         << " tokens\n";
    else
      os << "  stage 1: skipped\n";
    if (o_.train.steps > 0) {
      os << "  stage 2: " << o_.train.steps << " steps, " << o_.alpha << " x tau^2 " << to_string(o_.kd) << " KL";
      if (o_.kd == kd_divergence::topk) os << " (top " << o_.kd_topk << ")";
      os << " (tau " << o_.tau << ")";
      if (o_.alpha < 1) os << " + " << 1 - o_.alpha << " x cross-entropy";
      if (o_.beta > 0) os << " + " << o_.beta << " x hidden MSE";
      os << ", lr " << o_.train.lr << " -> " << o_.train.min_lr << ": " << o_.train.steps * per_step << " tokens\n";
    } else {
      os << "  stage 2: skipped\n";
    }
    return os.str();
  }

  distill_result run(context& ctx, io::token_span train_tokens, io::token_span valid_tokens = {}) {
    distill_result r;
    const auto phases = plan();
    std::size_t first = 0;
    bool resuming = false;
    if (o_.train.resume && !o_.train.run_dir.empty()) {
      const std::string label =
          dist::broadcast_string(comm(), comm().is_root() ? checkpoint_label(o_.train.run_dir) : std::string());
      if (!label.empty()) {
        while (first < phases.size() && phases[first].label != label) ++first;
        HYENA_CHECK(first < phases.size(), "distiller: the checkpoint in ", o_.train.run_dir, " was written by '",
                    label, "', which this distillation does not run: use another folder, or delete it to start afresh");
        resuming = true;
      }
    }
    // The fit report reads held-out windows when there are enough, else training ones.
    const io::token_span fit_tokens = valid_tokens.size() > o_.train.seq ? valid_tokens : train_tokens;
    if (!resuming) {
      progress_bar timer("", 0, 0, false);
      if (o_.init == student_init::attention) r.filter_fit = stage0(ctx, train_tokens);
      r.stage0_seconds = timer.seconds();
      r.fit_initial = fit_report(ctx, fit_tokens, "after stage 0");
    }
    progress_bar timer("", 0, 0, false);
    bool stage1_ran = false;
    budget_ = o_.train.stop_after > 0 ? o_.train.stop_after : -1;
    for (std::size_t i = first; i < phases.size() && budget_ != 0; ++i) {
      const auto& ph = phases[i];
      const bool resume = resuming && i == first;
      if (ph.layer < 0) {
        if (stage1_ran) {
          r.stage1_seconds = timer.seconds();
          r.fit = fit_report(ctx, fit_tokens, "after stage 1");
          stage1_ran = false;
        }
        r.stage2 = end_to_end(ctx, train_tokens, valid_tokens, resume);
        if (budget_ != 0 && r.stage2.steps_done == o_.train.steps) r.fit_final = fit_report(ctx, fit_tokens, "after stage 2");
      } else {
        r.stage1.push_back(transfer(ctx, ph, train_tokens, resume));
        r.stage1_tokens += ph.steps * o_.train.tokens_per_step();
        stage1_ran = true;
      }
    }
    if (stage1_ran && budget_ != 0) {
      r.stage1_seconds = timer.seconds();
      r.fit = fit_report(ctx, fit_tokens, "after stage 1");
    }
    return r;
  }

  // Stage 1 of one layer alone (its operator part, then its output part), from scratch.
  std::vector<layer_transfer> transfer_layer(context& ctx, index_t l, io::token_span tokens) {
    HYENA_CHECK(l >= 0 && l < s_.config().layers, "distiller: no student layer ", l);
    std::vector<layer_transfer> out;
    budget_ = -1;
    for (const auto& ph : plan())
      if (ph.layer == l) out.push_back(transfer(ctx, ph, tokens, false));
    return out;
  }

  // Stage 0 alone: the attention initialisation of every mixer. Returns each layer's
  // relative filter-fit error.
  std::vector<double> stage0(context& ctx, io::token_span tokens) {
    if constexpr (attention_teacher && hyena_student) {
      auto profile = measure_lag_profile(t_, ctx, tokens, o_.train.batch * o_.train.ranks(), o_.train.seq, o_.attention.batches,
                                         o_.train.seed + 77);
      auto errors = init_student_from_attention(ctx, t_, s_, profile, o_.layer_map, o_.attention, o_.train.progress);
      t_.reserve(o_.train.batch, o_.train.seq, models::mode::infer);
      return errors;
    } else {
      HYENA_FAIL("distiller: attention initialisation needs an attention teacher and a Hyena student");
    }
  }

  // Each student layer's fit to its teacher layer on `fit_batches` windows of `tokens` (a
  // fixed seed of their own; run() passes the validation tokens when given); written to metrics.jsonl ("stage 1 fit") and,
  // with progress on, to the terminal. Data parallel, every rank must call it (its normalisers are
  // averaged over the ranks); rank 0 writes.
  std::vector<layer_fit> fit_report(context& ctx, io::token_span tokens, const std::string& when) {
    std::vector<layer_fit> out;
    if (o_.fit_batches <= 0) return out;
    const index_t batch = o_.train.batch, seq = o_.train.seq;
    prepare_caches();
    for (index_t l = 0; l < s_.config().layers; ++l) {
      layer_fit f{l, o_.layer_map[std::size_t(l)]};
      double op = 0, outp = 0;
      random_window_loader loader(tokens, batch, seq, o_.train.seed + 4242);
      staged_batch<typename B::memory> staged(batch, seq);
      for (index_t i = 0; i < o_.fit_batches; ++i) {
        loader.next(staged.host());
        auto x = t_.forward_to(ctx, staged.ready().inputs.v(), f.teacher_layer);
        run_teacher_mixer(ctx, f.teacher_layer, x);
        run_student_mixer(ctx, l, x);
        outp += nn::mse_loss<B>(ctx, s_cache_.mixer_out, t_cache_.mixer_out) /
                mean_square(ctx, t_cache_.mixer_out);
        if constexpr (attention_teacher && hyena_student) {
          if (single_mixing_matrix()) op += operator_loss(ctx, l, nullptr, 1.0);
        }
      }
      f.output_error = outp / double(o_.fit_batches);
      if constexpr (attention_teacher && hyena_student) {
        if (single_mixing_matrix()) f.operator_error = op / double(o_.fit_batches);
      }
      out.push_back(f);
    }
    write_fit(out, when);
    return out;
  }

 private:
  struct phase {
    std::string label;
    index_t layer = -1;  // -1: stage 2
    bool operator_part = false;
    index_t steps = 0;
  };

  std::vector<phase> plan() const {
    std::vector<phase> p;
    if (o_.stage1_steps_per_layer > 0)
      for (index_t l = 0; l < s_.config().layers; ++l) {
        const std::string base = "stage 1 layer " + std::to_string(l);
        if (operator_steps() > 0) p.push_back({base + " operator", l, true, operator_steps()});
        if (output_steps() > 0) p.push_back({base + " output", l, false, output_steps()});
      }
    if (o_.train.steps > 0) p.push_back({"stage 2", -1, false, o_.train.steps});
    return p;
  }

  // Stage 1: one labelled run of the trainer on layer ph.layer.
  layer_transfer transfer(context& ctx, const phase& ph, io::token_span tokens, bool resume) {
    const index_t l = ph.layer, tl = o_.layer_map[std::size_t(l)];
    layer_transfer rec{l, tl, ph.steps, ph.operator_part ? "operator" : "output"};
    trainer_options to = o_.train;
    to.label = ph.label;
    to.steps = ph.steps;
    to.lr = o_.stage1_lr;
    to.min_lr = o_.stage1_lr * 0.1;
    to.warmup = std::max<index_t>(1, ph.steps / 10);
    to.seed = o_.train.seed + 1000 * std::uint64_t(l + 1) + (ph.operator_part ? 0 : 500);
    to.eval_every = 0;
    to.resume = resume;
    to.stop_after = budget_ > 0 ? budget_ : 0;
    const std::string mine = "blocks." + std::to_string(l) + ".mixer.";
    const bool lower_train = o_.stage1_target == transfer_target::block_output && !o_.freeze_transferred &&
                             !ph.operator_part;
    auto rule = [&, lower_train](const std::string& name) {
      param_group g = default_group_rule(o_.train.adam)(name);
      bool lower_mixer = false;
      for (index_t j = 0; j < l && lower_train; ++j)
        lower_mixer |= name.rfind("blocks." + std::to_string(j) + ".mixer.", 0) == 0;
      g.frozen = !(name.rfind(mine, 0) == 0 || lower_mixer);
      return g;
    };
    prepare_caches();
    trainer<Student> tr(s_, to, rule);
    typename trainer<Student>::step_fn fn;
    if (ph.operator_part) {
      fn = [&, l, tl](context& c, auto& b, double scale) {
        auto x = t_.forward_to(c, b.inputs.v(), tl);
        run_teacher_mixer(c, tl, x);
        run_student_mixer(c, l, x);
        return operator_loss(c, l, &s_.block_gradients(l).mix, scale);
      };
    } else if (o_.stage1_target == transfer_target::mixer_output) {
      fn = [&, l, tl](context& c, auto& b, double scale) {
        auto x = t_.forward_to(c, b.inputs.v(), tl);
        run_teacher_mixer(c, tl, x);
        run_student_mixer(c, l, x);
        tview d = d_out_.v();
        const double ms = mean_square(c, t_cache_.mixer_out);
        const double loss = nn::mse_loss<B>(c, s_cache_.mixer_out, t_cache_.mixer_out, d) / ms;
        B::scale(c, d.numel(), T(scale / ms), d.data);
        sblock::mixer::backward(c, sblock::mixer_config(s_.config()), s_.block_parameters(l).mix, s_cache_.mix, d,
                                tview{}, s_.block_gradients(l).mix);
        return loss;
      };
    } else {
      fn = [&, l, tl, lower_train](context& c, auto& b, double scale) {
        auto t_out = t_.forward_to(c, b.inputs.v(), tl + 1);
        auto s_out = s_.forward_to(c, b.inputs.v(), l + 1);
        tview d = s_.d_hidden();
        const double ms = mean_square(c, t_out);
        const double loss = nn::mse_loss<B>(c, s_out, t_out, d) / ms;
        B::scale(c, d.numel(), T(scale / ms), d.data);
        s_.backward_from(c, l, lower_train ? 0 : l);
        return loss;
      };
    }
    auto res = tr.run(ctx, tokens, {}, fn);
    spend(res);
    if (!res.history.empty()) {
      rec.first_loss = res.history.front().loss;
      rec.last_loss = res.history.back().loss;
    }
    return rec;
  }

  // Stage 2: end-to-end distillation through the trainer.
  train_result end_to_end(context& ctx, io::token_span train_tokens, io::token_span valid_tokens, bool resume) {
    trainer_options to = o_.train;
    to.label = "stage 2";
    to.resume = resume;
    to.stop_after = budget_ > 0 ? budget_ : 0;
    auto rule = [this](const std::string& name) {
      param_group g = default_group_rule(o_.train.adam)(name);
      if (o_.freeze_shared && !models::is_mixer_parameter(name)) g.frozen = true;
      return g;
    };
    trainer<Student> tr(s_, to, rule);
    const index_t batch = o_.train.batch, seq = o_.train.seq, layers = s_.config().layers;
    t_.reserve(batch, seq, models::mode::infer);
    const shape logits_shape{batch, seq, s_.config().vocab}, act{batch, seq, s_.config().hidden};
    tensor<T, typename B::memory> ce_grad;
    if (o_.alpha < 1) ce_grad = tensor<T, typename B::memory>(logits_shape);
    // Hidden-state targets and their MSE gradients, one per student layer, filled in forward.
    std::vector<tensor<T, typename B::memory>> t_hidden, d_hidden;
    if (o_.beta > 0)
      for (index_t i = 0; i < layers; ++i) t_hidden.emplace_back(act), d_hidden.emplace_back(act);
    models::hooks<T, typename B::memory> capture, extra;
    double grad_scale = 1;
    if (o_.beta > 0) {
      capture.on_forward = [&](index_t layer, models::hook_point p, ctview a) {
        if (p != models::hook_point::block_output) return;
        for (index_t i = 0; i < layers; ++i)
          if (o_.layer_map[std::size_t(i)] == layer) B::copy(ctx, a.numel(), a.data, t_hidden[std::size_t(i)].data());
      };
      extra.on_backward = [&](index_t layer, models::hook_point p, tview g) {
        if (p == models::hook_point::block_output)
          B::axpy(ctx, g.numel(), T(o_.beta * grad_scale), d_hidden[std::size_t(layer)].data(), g.data);
      };
    }
    auto res = tr.run(ctx, train_tokens, valid_tokens, [&](context& c, auto& b, double scale) {
      grad_scale = scale;
      auto t_logits = t_.forward(c, b.inputs.v(), o_.beta > 0 ? &capture : nullptr);
      auto s_logits = s_.forward(c, b.inputs.v());
      tview dl = s_.dlogits();
      double loss = 0;
      if (o_.alpha > 0) {
        loss += o_.alpha * divergence(c, t_logits, s_logits, dl);
        B::scale(c, dl.numel(), T(o_.alpha * scale), dl.data);
      } else {
        B::fill(c, dl.numel(), T(0), dl.data);
      }
      if (o_.alpha < 1) {
        loss += (1 - o_.alpha) * nn::cross_entropy_loss<B>(c, s_logits, b.targets.v(), ce_grad.v());
        B::axpy(c, dl.numel(), T((1 - o_.alpha) * scale), ce_grad.data(), dl.data);
      }
      for (index_t i = 0; i < index_t(t_hidden.size()); ++i)
        loss += o_.beta * nn::mse_loss<B>(c, s_.activation(i, models::hook_point::block_output),
                                          t_hidden[std::size_t(i)].v(), d_hidden[std::size_t(i)].v());
      s_.backward(c, o_.beta > 0 ? &extra : nullptr);
      return loss;
    });
    spend(res);
    return res;
  }

  // Counts a run's steps against train.stop_after (budget_ < 0: no limit).
  void spend(const train_result& res) {
    if (budget_ < 0) return;
    budget_ = std::max<index_t>(0, budget_ - index_t(res.history.size() + std::size_t(res.steps_skipped)));
  }

  double divergence(context& c, ctview t_logits, ctview s_logits, tview dl) {
    switch (o_.kd) {
      case kd_divergence::forward: return nn::kl_div_loss<B>(c, t_logits, s_logits, o_.tau, dl);
      case kd_divergence::reverse: return nn::reverse_kl_loss<B>(c, t_logits, s_logits, o_.tau, dl);
      case kd_divergence::topk: return nn::topk_kl_loss<B>(c, t_logits, s_logits, o_.kd_topk, o_.tau, dl);
    }
    HYENA_FAIL("distiller: unknown divergence");
  }

  // Block caches for running one teacher and one student mixer outside their models, and the
  // attention matrices, sized once for (batch, seq).
  void prepare_caches() {
    if (caches_bound_) return;
    const index_t batch = o_.train.batch, seq = o_.train.seq;
    t_cache_arena_.bind(t_cache_, t_.config(), batch, seq);
    s_cache_arena_.bind(s_cache_, s_.config(), batch, seq);
    d_out_ = tensor<T, typename B::memory>(shape{batch, seq, s_.config().hidden});
    if constexpr (attention_teacher) probs_ = tensor<T, typename B::memory>(shape{batch, t_.config().heads, seq, seq});
    t_.reserve(batch, seq, models::mode::infer);
    caches_bound_ = true;
  }

  // Teacher block tl's norm1 and mixer on its input x (cache kept in t_cache_); for an
  // attention teacher, also its attention matrices in probs_.
  void run_teacher_mixer(context& ctx, index_t tl, ctview x) {
    const auto& c = t_.config();
    auto& p = t_.block_parameters(tl);
    tblock::norm::forward(ctx, tblock::norm_config(c), p.norm1, t_cache_.norm1, x, t_cache_.norm1_out);
    tblock::mixer::forward(ctx, tblock::mixer_config(c), p.mix, t_cache_.mix, t_cache_.norm1_out, t_cache_.mixer_out);
    if constexpr (attention_teacher) {
      const auto ac = nn::attention_config::from(c);
      const index_t batch = x.size(0), seq = x.size(1);
      B::causal_attention_probs(ctx, batch, seq, ac.heads, ac.kv_heads, ac.head_dim(),
                                static_cast<T>(1.0 / std::sqrt(double(ac.head_dim()))),
                                static_cast<const T*>(t_cache_.mix.qkv.data), ac.qkv_dim(),
                                static_cast<const T*>(t_cache_.mix.lse.data), probs_.data());
    }
  }

  // Student block l's norm1 and mixer on the teacher's input x (cache kept in s_cache_).
  void run_student_mixer(context& ctx, index_t l, ctview x) {
    const auto& c = s_.config();
    auto& p = s_.block_parameters(l);
    sblock::norm::forward(ctx, sblock::norm_config(c), p.norm1, s_cache_.norm1, x, s_cache_.norm1_out);
    sblock::mixer::forward(ctx, sblock::mixer_config(c), p.mix, s_cache_.mix, s_cache_.norm1_out, s_cache_.mixer_out);
  }

  // Normalised operator-alignment loss of student layer l against probs_ (gradient into g).
  double operator_loss(context& ctx, index_t l, typename sblock::mixer::params* g, double scale) {
    if constexpr (attention_teacher && hyena_student) {
      const auto& c = s_.config();
      const index_t batch = o_.train.batch, seq = o_.train.seq;
      ctview probs(probs_.data(), {batch, t_.config().heads, seq, seq});
      return align_(ctx, sblock::mixer_config(c), s_.block_parameters(l).mix, s_cache_.mix, probs,
                    t_.config().head_dim(), g, scale, comm());
    } else {
      HYENA_FAIL("distiller: operator alignment needs an attention teacher and a Hyena student");
    }
  }

  // The normaliser of the output-alignment losses: the mean square over every rank's batch (the
  // ranks' batches are the same size), so the ranks' normalised losses average to the global one.
  double mean_square(context& ctx, ctview v) {
    const double local = B::sum_squares(ctx, v.numel(), v.data) / double(std::max<index_t>(1, v.numel()));
    return std::max(dist::all_reduce_mean(comm(), local), 1e-12);
  }

  dist::communicator& comm() const { return o_.train.comm ? *o_.train.comm : dist::local(); }

  // The fit table: metrics.jsonl lines {"label": "stage 1 fit", "when", "layer", ...} (the
  // previous ones for the same `when` replaced), and the terminal when progress is on.
  void write_fit(const std::vector<layer_fit>& fit, const std::string& when) {
    if (o_.train.progress) {
      std::fprintf(stderr, "per-layer fit %s (normalised errors; 0 is exact):\n", when.c_str());
      for (const auto& f : fit) {
        std::fprintf(stderr, "  layer %lld (teacher %lld):", (long long)f.layer, (long long)f.teacher_layer);
        if (!std::isnan(f.operator_error)) std::fprintf(stderr, " operator %.4f ", f.operator_error);  // rank 1 only
        std::fprintf(stderr, " output %.4f\n", f.output_error);
      }
    }
    if (o_.train.run_dir.empty() || !comm().is_root()) return;
    std::filesystem::create_directories(o_.train.run_dir);
    const std::string path = o_.train.run_dir + "/metrics.jsonl";
    std::vector<std::string> keep;
    {
      std::ifstream in(path);
      for (std::string line; std::getline(in, line);) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_object() || j.value("label", "") != "stage 1 fit" || j.value("when", "") != when)
          keep.push_back(line);
      }
    }
    std::ofstream out(path, std::ios::trunc);
    for (auto& line : keep) out << line << '\n';
    for (const auto& f : fit) {
      nlohmann::json j{{"label", "stage 1 fit"}, {"when", when}, {"layer", f.layer},
                       {"teacher_layer", f.teacher_layer}, {"output_error", f.output_error}};
      if (!std::isnan(f.operator_error)) j["operator_error"] = f.operator_error;
      out << j.dump() << '\n';
    }
  }

  Teacher& t_;
  Student& s_;
  distill_options o_;
  typename tblock::cache t_cache_;
  typename sblock::cache s_cache_;
  arena<T, typename B::memory> t_cache_arena_, s_cache_arena_;
  tensor<T, typename B::memory> d_out_, probs_;
  bool caches_bound_ = false;
  index_t budget_ = -1;  // steps this call may still take (train.stop_after), -1: no limit
  std::conditional_t<hyena_student, operator_alignment<B, T>, int> align_{};
};

}  // namespace hyena::train
