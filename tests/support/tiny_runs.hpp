// tiny_runs.hpp: the small training and distillation runs that compare two backends (the cuda
// backend and cpu_ref, or a backend with non-host memory and cpu_ref): a 2-layer, 32-wide GPT-NeoX
// on the toy corpus, a few steps of each stage.
#pragma once
#include <string>
#include <vector>

#include <hyena/models/gpt_neox.hpp>
#include <hyena/train/distill.hpp>
#include <hyena/train/trainer.hpp>

#include "corpus.hpp"

namespace hyena::testing {

inline models::model_config tiny_config() { return models::gpt_neox_config(256, 32, 2, 4, 64, 32); }

inline train::trainer_options tiny_train_options(const std::string& run_dir = {}) {
  train::trainer_options o;
  o.batch = 4;
  o.seq = 32;
  o.steps = 6;
  o.warmup = 2;
  o.lr = 3e-3;
  o.progress = false;
  o.run_dir = run_dir;
  return o;
}

// Stage 0 from attention (a short filter fit), two stage-1 steps per layer, four of stage 2.
inline train::distill_options tiny_distill_options() {
  train::distill_options o;
  o.train = tiny_train_options();
  o.train.steps = 4;
  o.stage1_steps_per_layer = 2;
  o.attention.filter_fit_steps = 20;
  o.attention.batches = 1;
  return o;
}

}  // namespace hyena::testing
