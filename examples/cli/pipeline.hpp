// pipeline.hpp: the steps `hyena distill` and `hyena demo` share: training a model from
// scratch, distilling a student, evaluating, saving.
#pragma once
#include <filesystem>
#include <string>

#include <hyena/io/token_file.hpp>
#include <hyena/train/distill.hpp>
#include <hyena/train/trainer.hpp>

#include "common.hpp"

namespace hyena::cli {

struct stage_report {
  std::string name;
  index_t tokens = 0;        // tokens the model was trained on in this pipeline
  double seconds = 0;        // wall time of its training
  index_t parameters = 0;
  std::vector<std::pair<index_t, double>> curve;  // (tokens, validation loss)
};

// Steps of `batch x seq` tokens that cover `tokens`.
inline index_t steps_for(index_t tokens, index_t batch, index_t seq) {
  return std::max<index_t>(1, tokens / (batch * seq));
}

// Trains `m` from its current weights with cross-entropy; returns the curve and time.
template <class Model, class Context>
stage_report train_from_scratch(Model& m, Context& ctx, const train::trainer_options& o,
                                io::token_span train_tokens, io::token_span valid_tokens, const std::string& name) {
  train::trainer<Model> t(m, o);
  auto res = t.run(ctx, train_tokens, valid_tokens);
  stage_report r{name, res.tokens, res.seconds, m.parameter_count(), {}};
  for (auto& h : res.history)
    if (!std::isnan(h.val_loss)) r.curve.push_back({h.tokens, h.val_loss});
  return r;
}

// Runs a distiller (stages 0 to 2); the curve's tokens include stage 1's.
template <class Distiller, class Student, class Context>
stage_report run_distiller(Distiller& d, Student& student, Context& ctx, io::token_span train_tokens,
                           io::token_span valid_tokens, const std::string& name,
                           train::distill_result* result = nullptr) {
  auto res = d.run(ctx, train_tokens, valid_tokens);
  stage_report r{name, res.stage1_tokens + res.stage2.tokens, res.stage0_seconds + res.stage1_seconds + res.stage2.seconds,
                 student.parameter_count(), {}};
  for (auto& h : res.stage2.history)
    if (!std::isnan(h.val_loss)) r.curve.push_back({res.stage1_tokens + h.tokens, h.val_loss});
  if (result) *result = std::move(res);
  return r;
}

template <class Model>
void save_model(const std::string& path, Model& m, const std::string& arch, const train::metadata& extra = {}) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  train::save_checkpoint(path, m, nullptr, extra, arch);
}

// Opens a token file and checks it fits a model with `vocab` entries.
inline io::token_file open_tokens(const std::string& path, index_t vocab) {
  io::token_file f(path);
  HYENA_CHECK(f.vocab() <= vocab, "token file ", path, " has vocab ", f.vocab(), ", the model only ", vocab);
  return f;
}

}  // namespace hyena::cli
