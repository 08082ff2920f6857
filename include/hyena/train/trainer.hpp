// train/trainer.hpp: the training loop, generic over the model type and the objective.
//
// Each step: zero the gradients, run `grad_accum` micro-batches through a step
// function (forward + backward, gradients accumulate), clip by global norm, take an
// AdamW step at the cosine-scheduled learning rate. Around it: a progress bar,
// metrics as JSON lines, periodic validation and atomic checkpoints from which a run
// resumes exactly (same batches, same losses).
//
// The step function is the objective: cross-entropy by default; the distiller's stages
// (train/distill.hpp) are other step functions driven by this same loop, one labelled run
// after another in one run folder. A checkpoint records the label of the run that wrote it,
// and a run resumes only from its own.
//
// Data parallel (trainer_options::comm with N ranks, every rank running the same program): rank
// r reads rows [r batch, (r + 1) batch) of a global batch of N x batch rows; after the
// micro-batches the gradients are averaged over the ranks (one all-reduce over the span of the
// gradient arena that holds the trained tensors), so clipping and AdamW see the gradient of the
// global batch and every rank takes the same step. Rank 0 alone resumes from and writes
// checkpoints, metrics and the progress bar; the parameters, the optimizer state and the step
// are broadcast from it at the start, so a run resumes with any number of ranks.
// With zero1 (ZeRO stage 1), each rank keeps AdamW's moments for, and updates, 1/N of the
// trained span of the parameter arena; the parameters are all-gathered after each step. Its
// checkpoints hold the whole state, gathered for the write (every rank holds it briefly then).
#pragma once
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../dist/communicator.hpp"
#include "../io/atomic_file.hpp"
#include "../nn/loss.hpp"
#include "adamw.hpp"
#include "checkpoint.hpp"
#include "data_loader.hpp"
#include "evaluate.hpp"
#include "grad_clip.hpp"
#include "progress.hpp"
#include "schedule.hpp"

namespace hyena::train {

struct trainer_options {
  std::string label = "train";  // names the run in metrics, checkpoints and the progress bar
  index_t batch = 8, seq = 256;
  index_t steps = 100;       // optimizer steps
  index_t grad_accum = 1;    // micro-batches per step
  index_t warmup = 10;
  double lr = 1e-3, min_lr = 1e-4;
  double clip = 1.0;         // global gradient-norm clip (<= 0: off)
  adamw_config adam{};
  std::uint64_t seed = 0;    // the data order
  index_t eval_every = 0;    // validation every this many steps (0: only at the end)
  eval_options eval{};       // batch/seq/max_tokens of validation
  index_t checkpoint_every = 0;
  std::string run_dir;       // metrics.jsonl and checkpoint.safetensors go here when set
  bool resume = true;        // continue from run_dir/checkpoint.safetensors if present
  bool progress = true;
  index_t stop_after = 0;    // stop after this many steps of this call (tests of resume)
  index_t skip_nonfinite = 0;  // steps with a NaN/inf loss or gradient skipped before the run stops
  // Data parallel over this communicator's ranks (batch is per rank); null: this process alone.
  // Not owned; every rank passes the same options.
  dist::communicator* comm = nullptr;
  bool zero1 = false;  // shard AdamW's state over the ranks (ZeRO stage 1)

  int ranks() const { return comm ? comm->size() : 1; }
  // Tokens of one optimizer step, over all ranks.
  index_t tokens_per_step() const { return batch * seq * grad_accum * ranks(); }
};

struct train_record {
  index_t step = 0;
  index_t tokens = 0;
  double loss = 0, lr = 0, grad_norm = 0;
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0;
};

struct train_result {
  std::vector<train_record> history;
  eval_result final_eval;
  double seconds = 0;
  index_t tokens = 0;
  index_t steps_done = 0;
  index_t steps_skipped = 0;  // non-finite steps skipped (skip_nonfinite)
  double reduce_seconds = 0;  // spent averaging gradients across ranks (data parallel)
};

// The label ("train.label") of the checkpoint in `run_dir`, or "" when there is none.
inline std::string checkpoint_label(const std::string& run_dir) {
  const std::string path = run_dir + "/checkpoint.safetensors";
  if (run_dir.empty() || !std::filesystem::exists(path)) return "";
  auto f = io::safetensors_file::open(path);
  auto it = f.metadata().find("train.label");
  return it == f.metadata().end() ? "train" : it->second;
}

template <class Model>
class trainer {
 public:
  using T = typename Model::scalar;
  using B = typename Model::backend;
  using context = typename Model::context;
  using memory = typename B::memory;
  using batch_type = basic_token_batch<memory>;  // a batch in the model's memory
  // One micro-batch: forward and backward (gradients accumulate, scaled by grad_scale);
  // returns the loss.
  using step_fn = std::function<double(context&, batch_type&, double grad_scale)>;

  trainer(Model& m, trainer_options o, group_rule rule = {})
      : model_(m), rule_(rule ? rule : default_group_rule(o.adam)),
        opt_(param_entries<T, memory>(m.parameters(), m.gradients(), m.config()), o.adam, rule_),
        o_(std::move(o)), comm_(o_.comm ? *o_.comm : dist::local()) {
    HYENA_CHECK(o_.batch > 0 && o_.seq > 0 && o_.steps > 0 && o_.grad_accum > 0,
                "trainer: batch, seq, steps and grad_accum must be positive");
    HYENA_CHECK(o_.seq <= m.config().max_seq, "trainer: seq ", o_.seq, " exceeds the model's max_seq ",
                m.config().max_seq);
    HYENA_CHECK(o_.skip_nonfinite >= 0, "trainer: skip_nonfinite must be >= 0");
    if (o_.eval.batch == 0) o_.eval.batch = o_.batch;
    if (o_.eval.seq == 0) o_.eval.seq = o_.seq;
    for (index_t i = 0; i < opt_.size(); ++i)
      if (!opt_.group(i).frozen) trained_.push_back(opt_.entry(i));
    trained_grads_ = gradients_of(trained_);
    find_gradient_span();
    if (sharded()) shard_optimizer();
  }

  adamw<T, B>& optimizer() { return opt_; }
  const trainer_options& options() const { return o_; }
  std::string checkpoint_path() const { return o_.run_dir.empty() ? "" : o_.run_dir + "/checkpoint.safetensors"; }

  // Cross-entropy on next-token targets: the default step function.
  step_fn language_model_step() {
    return [this](context& ctx, batch_type& b, double scale) {
      auto logits = model_.forward(ctx, b.inputs.v());
      double loss = nn::cross_entropy_loss<B>(ctx, logits, b.targets.v(), model_.dlogits());
      if (scale != 1.0) B::scale(ctx, model_.dlogits().numel(), T(scale), model_.dlogits().data);
      model_.backward(ctx);
      return loss;
    };
  }

  train_result run(context& ctx, io::token_span train_tokens, io::token_span valid_tokens = {}, step_fn fn = {}) {
    if (!fn) fn = language_model_step();
    cosine_schedule lr{o_.lr, o_.min_lr, std::min(o_.warmup, o_.steps), o_.steps};
    index_t step = 0;
    if (sharded()) {  // rank 0 reads the whole state; every rank keeps its own piece of it
      auto full = unsharded_optimizer();
      if (comm_.is_root()) step = resume_if_possible(full.get());
      auto state = full->state_arena();
      comm_.broadcast(state.data, std::size_t(state.numel()) * sizeof(T), 0);
      opt_.copy_state_from(*full);
    } else if (comm_.is_root()) {
      step = resume_if_possible(&opt_);
    }
    if (comm_.size() > 1) step = synchronise(step);
    random_window_loader loader(train_tokens, o_.batch, o_.seq, o_.seed, step * o_.grad_accum,
                                index_t(comm_.rank()) * o_.batch);
    staged_batch<memory> staged(o_.batch, o_.seq);
    model_.reserve(o_.batch, o_.seq, models::mode::train);
    std::ofstream metrics = comm_.is_root() ? open_metrics(step) : std::ofstream{};
    progress_bar bar(o_.label, o_.steps, o_.tokens_per_step(), o_.progress && comm_.is_root());
    bar.set_first_step(step);
    train_result res;
    const index_t first = step;
    for (; step < o_.steps; ++step) {
      if (o_.stop_after > 0 && step - first >= o_.stop_after) break;
      const double rate = lr(step + 1);
      model_.zero_grad();
      double loss = 0;
      for (index_t a = 0; a < o_.grad_accum; ++a) {
        loader.next(staged.host());
        try {
          loss += fn(ctx, staged.ready(), 1.0 / double(o_.grad_accum)) / double(o_.grad_accum);
        } catch (const nonfinite_error&) {
          loss = std::numeric_limits<double>::quiet_NaN();
        }
      }
      if (comm_.size() > 1) loss = average_gradients(ctx, loss, res);
      const double norm = global_grad_norm<T, B>(ctx, trained_grads_);
      const bool finite = std::isfinite(loss) && std::isfinite(norm);
      const bool last = step + 1 == o_.steps;
      if (finite) {
        opt_.step(ctx, rate, clip_factor(norm, o_.clip));  // the clip folded into the update
        if (sharded()) comm_.all_gather(param_lo(), shard_counts_);  // every rank's updated piece
        train_record rec{step + 1, (step + 1) * o_.tokens_per_step(), loss, rate, norm};
        rec.seconds = bar.seconds();
        if ((o_.eval_every > 0 && (step + 1) % o_.eval_every == 0) || last) {
          if (valid_tokens.size() > 1) {
            res.final_eval = evaluate(model_, ctx, valid_tokens, o_.eval, comm_);
            rec.val_loss = res.final_eval.loss;
          }
        }
        write_metrics(metrics, rec);
        res.history.push_back(rec);
        std::ostringstream extra;
        if (!std::isnan(rec.val_loss)) extra << "val " << rec.val_loss;
        bar.update(step + 1, loss, extra.str());
      } else {
        skip_or_stop(ctx, step + 1, loss, res);
      }
      const bool checkpoint = (o_.checkpoint_every > 0 && (step + 1) % o_.checkpoint_every == 0) || last;
      if (checkpoint && !o_.run_dir.empty() && (comm_.is_root() || sharded())) save(step + 1);
    }
    res.steps_done = step;
    res.tokens = step * o_.tokens_per_step();
    res.seconds = bar.seconds();
    return res;
  }

  // Writes the model, optimizer and position to run_dir/checkpoint.safetensors (rank 0; with
  // zero1 every rank must call it, to gather the optimizer state).
  void save(index_t step) {
    adamw<T, B>* opt = &opt_;
    std::unique_ptr<adamw<T, B>> full;
    if (sharded()) {  // the whole state: each rank's piece, summed into zeros elsewhere
      full = unsharded_optimizer();
      opt_.copy_state_to(*full);
      if (!comm_.is_root()) full->set_step_count(0);  // the sum keeps rank 0's count
      auto state = full->state_arena();
      comm_.all_reduce_sum(state.data, std::size_t(state.numel()));
      opt = full.get();
    }
    if (!comm_.is_root()) return;
    std::filesystem::create_directories(o_.run_dir);
    save_checkpoint(checkpoint_path(), model_, opt,
                    {{"train.step", std::to_string(step)}, {"train.seed", std::to_string(o_.seed)},
                     {"train.label", o_.label}});
  }

 private:
  // Data parallel: the step from rank 0 (which alone resumed), then its parameters and
  // optimizer state, so every rank starts from the same point whatever it loaded or drew.
  index_t synchronise(index_t step) {
    comm_.broadcast(&step, sizeof step, 0);
    auto params = model_.parameter_arena().flat();
    comm_.broadcast(params.data, params.numel() * sizeof(T), 0);
    if (!sharded()) {
      auto state = opt_.state_arena();
      comm_.broadcast(state.data, state.numel() * sizeof(T), 0);
    }
    return step;
  }

  // ZeRO-1 ------------------------------------------------------------------------------
  bool sharded() const { return o_.zero1 && comm_.size() > 1 && !trained_.empty(); }
  // The trained span in the parameter arena (the gradient span's offsets: same layout).
  T* param_lo() { return model_.parameter_arena().flat().data + (grad_lo_ - model_.gradient_arena().flat().data); }

  // Rank r owns piece r of the trained span, split evenly by elements.
  void shard_optimizer() {
    shard_counts_ = dist::even_pieces(std::size_t(grad_hi_ - grad_lo_), comm_.size());
    std::size_t offset = 0;
    for (int r = 0; r < comm_.rank(); ++r) offset += shard_counts_[std::size_t(r)];
    const T* begin = param_lo() + offset;
    opt_.shard(begin, begin + shard_counts_[std::size_t(comm_.rank())]);
  }

  // An optimizer over the same tensors holding all of the state (checkpoints of a zero1 run).
  std::unique_ptr<adamw<T, B>> unsharded_optimizer() {
    return std::make_unique<adamw<T, B>>(param_entries<T, memory>(model_.parameters(), model_.gradients(), model_.config()),
                                      o_.adam, rule_);
  }

  // The gradient arena's span [grad_lo_, grad_hi_) that holds every trained tensor: one
  // all-reduce covers it (stage 1 of distillation trains one layer's mixer, a small span).
  void find_gradient_span() {
    if (trained_.empty()) return;
    grad_lo_ = trained_.front().grad.data;
    grad_hi_ = grad_lo_;
    for (auto& e : trained_) {
      grad_lo_ = std::min(grad_lo_, e.grad.data);
      grad_hi_ = std::max(grad_hi_, e.grad.data + e.grad.numel());
    }
    auto arena = model_.gradient_arena().flat();
    HYENA_CHECK(grad_lo_ >= arena.data && grad_hi_ <= arena.data + arena.numel(),
                "trainer: the trained gradients are not all in the model's gradient arena");
  }

  // Sums the gradients (and the loss) over the ranks and divides by their number: each rank's
  // gradient is of its own rows' mean loss, so the average is the global batch's.
  double average_gradients(context& ctx, double loss, train_result& res) {
    progress_bar timer("", 0, 0, false);
    const index_t n = index_t(grad_hi_ - grad_lo_);
    if (n > 0) {
      comm_.all_reduce_sum(grad_lo_, std::size_t(n));
      B::scale(ctx, n, T(1.0 / comm_.size()), grad_lo_);
    }
    loss = dist::all_reduce_mean(comm_, loss);
    res.reduce_seconds += timer.seconds();
    return loss;
  }

  // A step whose loss or gradient norm is not finite: skipped (nothing updated) while the
  // skip_nonfinite allowance lasts, else the run stops naming the step and the first tensor
  // whose gradient is not finite.
  void skip_or_stop(context& ctx, index_t step, double loss, train_result& res) {
    std::string culprit = "the loss";
    for (auto& e : trained_)
      if (!std::isfinite(B::sum_squares(ctx, e.grad.numel(), e.grad.data))) {
        culprit = "the gradient of " + e.name;
        break;
      }
    HYENA_CHECK(res.steps_skipped < o_.skip_nonfinite, o_.label, ": step ", step, ": ", culprit,
                " is not finite (loss ", loss, "); the parameters are left as they were after step ", step - 1,
                (o_.skip_nonfinite > 0 ? " (all allowed non-finite steps were already skipped)" : ""),
                ". Lower the learning rate, or let up to N such steps be skipped (skip_nonfinite)");
    ++res.steps_skipped;
    if (comm_.is_root())
      std::fprintf(stderr, "%s: step %lld: %s is not finite; step skipped (%lld of %lld allowed)\n", o_.label.c_str(),
                 (long long)step, culprit.c_str(), (long long)res.steps_skipped, (long long)o_.skip_nonfinite);
  }

  index_t resume_if_possible(adamw<T, B>* opt) {
    const std::string path = checkpoint_path();
    if (path.empty() || !o_.resume || !std::filesystem::exists(path)) return 0;
    const std::string label = checkpoint_label(o_.run_dir);
    HYENA_CHECK(label == o_.label, "checkpoint ", path, " was written by the run '", label, "', not by '", o_.label,
                "': use another folder, or delete the checkpoint to start afresh");
    auto meta = load_checkpoint(path, model_, opt);
    auto it = meta.find("train.step");
    HYENA_CHECK(it != meta.end(), "checkpoint ", path, ": no train.step metadata");
    auto seed = meta.find("train.seed");
    HYENA_CHECK(seed == meta.end() || seed->second == std::to_string(o_.seed), "checkpoint ", path,
                ": written with data seed ", seed->second, ", this run uses ", o_.seed);
    // A corrupted or hand-edited value is the file's problem, named as such (not std::stoll's).
    index_t step = -1;
    const std::string& text = it->second;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), step);
    HYENA_CHECK(ec == std::errc{} && end == text.data() + text.size() && step >= 0, "checkpoint ", path,
                ": train.step '", text, "' is not a step count");
    return step;
  }

  // Opens metrics.jsonl for appending. Lines of other runs in the same folder (earlier
  // stages) stay; lines of this run past `step` (left by a run that died after its last
  // checkpoint) and a torn last line go, so the file always describes one history. The
  // pruned file replaces the old one atomically: a kill at any moment loses no kept line.
  std::ofstream open_metrics(index_t step) {
    if (o_.run_dir.empty()) return {};
    std::filesystem::create_directories(o_.run_dir);
    const std::string path = o_.run_dir + "/metrics.jsonl";
    std::string kept;
    bool dropped = false;
    {
      std::ifstream in(path, std::ios::binary);
      const std::string text{std::istreambuf_iterator<char>(in), {}};
      dropped = !text.empty() && text.back() != '\n';  // a torn last line: appending would join it
      std::istringstream lines(text);
      for (std::string line; std::getline(lines, line);) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        const bool valid = !j.is_discarded() && j.is_object();
        const bool mine = valid && j.value("label", std::string("train")) == o_.label;
        if (valid && (!mine || j.value("step", index_t(0)) <= step)) {
          kept += line;
          kept += '\n';
        } else {
          dropped = true;
        }
      }
    }
    if (dropped) {
      io::atomic_file f(path, "metrics file");
      f.write(kept.data(), kept.size());
      f.commit();
    }
    return std::ofstream(path, std::ios::app);
  }

  void write_metrics(std::ofstream& out, const train_record& r) {
    if (!out.is_open()) return;
    nlohmann::json j{{"label", o_.label}, {"step", r.step}, {"tokens", r.tokens}, {"loss", r.loss},
                     {"lr", r.lr}, {"grad_norm", r.grad_norm}, {"seconds", r.seconds}};
    if (!std::isnan(r.val_loss)) j["val_loss"] = r.val_loss;
    out << j.dump() << '\n';
    out.flush();
  }

  Model& model_;
  group_rule rule_;
  adamw<T, B> opt_;
  trainer_options o_;
  dist::communicator& comm_;
  std::vector<param_entry<T, memory>> trained_;  // the tensors the optimizer updates (clipping sees only these)
  std::vector<view<T, memory>> trained_grads_;   // their gradients
  T *grad_lo_ = nullptr, *grad_hi_ = nullptr;  // see find_gradient_span
  std::vector<std::size_t> shard_counts_;      // zero1: each rank's piece of the trained span
};

}  // namespace hyena::train
