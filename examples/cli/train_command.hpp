// train_command.hpp: `hyena train` for a model on any backend (cmd_train.cpp parses the options
// and runs it on the CPU; cuda_commands.cu on the GPU).
//
// Re-running the same command continues from RUN_DIR/checkpoint.safetensors (the trainer's
// resume file); the model is initialised first either way, then overwritten by it.
#pragma once
#include <cstdio>
#include <filesystem>
#include <string>

#include <hyena/io/token_file.hpp>
#include <hyena/train/trainer.hpp>

#include "common.hpp"

namespace hyena::cli {

struct train_cli_options {
  std::string arch, preset, config, train_path, valid_path, out, teacher;
  index_t steps = 0, batch = 8, seq = 0, warmup = 10, grad_accum = 1;
  double lr = 1e-3, min_lr = 1e-4, clip = 1.0, weight_decay = 0.1;
  std::uint64_t seed = 0;
  index_t eval_every = 0, eval_tokens = 0, checkpoint_every = 0;
  bool no_resume = false;
  device_options dev;
};

// The model config: a preset, or a JSON object (inline, or a file holding one; a Hyena
// student's operator under "mixer"). The vocab comes from the token file unless the JSON
// sets it; kv_heads defaults to heads.
template <class Model>
typename Model::config_type model_shape(const train_cli_options& o, index_t data_vocab) {
  HYENA_CHECK(o.preset.empty() != o.config.empty(), "train: give exactly one of --preset and --config");
  if (!o.preset.empty()) return preset_config<Model>(o.preset, data_vocab);
  std::string text = o.config;
  if (text.find('{') == std::string::npos) {
    HYENA_CHECK(std::filesystem::is_regular_file(text), "train: --config file ", text, " not found");
    text = io::read_text_file(text);
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  HYENA_CHECK(!j.is_discarded(), "train: --config is not valid JSON");
  if (j.is_object() && !j.contains("vocab")) j["vocab"] = data_vocab;
  if (j.is_object() && j.contains("heads") && !j.contains("kv_heads")) j["kv_heads"] = j["heads"];  // no GQA unless asked
  return models::config_from_json<typename Model::config_type>(j);
}

inline io::token_file open_tokens(const std::string& path, const char* what, index_t model_vocab) {
  HYENA_CHECK(std::filesystem::is_regular_file(path), "train: ", what, " file ", path, " not found");
  io::token_file f(path);
  HYENA_CHECK(f.vocab() <= model_vocab, "train: ", path, " has vocab ", f.vocab(), ", more than the model's ",
              model_vocab);
  return f;
}

// Trains a fresh model of `cfg`, or continues from `start`'s weights when given.
template <class Model>
void train_model(const train_cli_options& o, const std::string& arch, const io::token_file& train_tokens,
                 typename Model::config_type cfg, Model* start = nullptr) {
  const index_t seq = o.seq > 0 ? o.seq : cfg.max_seq;
  HYENA_CHECK(seq <= cfg.max_seq, "train: --seq ", seq, " exceeds the model's max_seq ", cfg.max_seq);
  HYENA_CHECK(train_tokens.size() > seq, "train: ", train_tokens.path(), " has ", train_tokens.size(),
              " tokens, need more than --seq ", seq);
  io::token_file valid;
  if (!o.valid_path.empty()) valid = open_tokens(o.valid_path, "--valid", cfg.vocab);
  HYENA_CHECK(o.valid_path.empty() || valid.size() >= 2, "train: ", o.valid_path, " needs at least 2 tokens");

  Model model(cfg);
  rng r(o.seed);
  model.init(r);
  if (start) models::copy_weights(*start, model);
  std::printf("%s: %lld parameters (hidden %lld, layers %lld, max_seq %lld, vocab %lld)\n", arch.c_str(),
              (long long)model.parameter_count(), (long long)cfg.hidden, (long long)cfg.layers,
              (long long)cfg.max_seq, (long long)cfg.vocab);

  train::trainer_options t;
  t.batch = o.batch;
  t.seq = seq;
  t.steps = o.steps;
  t.grad_accum = o.grad_accum;
  t.warmup = o.warmup;
  t.lr = o.lr;
  t.min_lr = o.min_lr;
  t.clip = o.clip;
  t.adam.weight_decay = o.weight_decay;
  t.seed = o.seed;
  t.eval_every = o.eval_every;
  t.eval = {.batch = o.batch, .seq = seq, .max_tokens = o.eval_tokens, .source_bytes = double(valid.source_bytes())};
  t.checkpoint_every = o.checkpoint_every;
  t.run_dir = o.out;
  t.resume = !o.no_resume;
  t.comm = &world();  // data parallel under mpirun; batch is per rank
  train::trainer<Model> tr(model, t);

  // Say where a resumed run starts, and refuse a checkpoint of another model shape
  // (it would fail later with a less helpful message).
  const std::string ckpt = tr.checkpoint_path();
  if (t.resume && world().is_root() && std::filesystem::exists(ckpt)) {
    auto f = io::safetensors_file::open(ckpt);
    HYENA_CHECK(models::to_json(train::checkpoint_config<typename Model::config_type>(f)) == models::to_json(cfg),
                "train: ", ckpt,
                " holds a model of another shape; use --no-resume or another --out");
    auto step = f.metadata().find("train.step");
    std::printf("resuming from step %s of %s\n", step == f.metadata().end() ? "?" : step->second.c_str(),
                ckpt.c_str());
  }

  auto ctx = device_context<typename Model::backend>(o.dev);
  auto res = tr.run(ctx, train_tokens.tokens(), valid.tokens());
  if (!o.valid_path.empty() && res.final_eval.tokens == 0)  // already finished: nothing ran
    res.final_eval = train::evaluate(model, ctx, valid.tokens(), t.eval, world());

  const std::string model_path = o.out + "/model.safetensors";
  if (world().is_root())
    train::save_checkpoint(model_path, model, nullptr, {{"train.step", std::to_string(res.steps_done)}}, arch);
  if (!res.history.empty())
    std::printf("step %lld: train loss %.4f (%.2f s, %lld tokens)\n", (long long)res.steps_done,
                res.history.back().loss, res.seconds, (long long)(res.history.size() * t.tokens_per_step()));
  if (!o.valid_path.empty()) {
    const auto& e = res.final_eval;
    std::printf("validation: loss %.4f, perplexity %.3f", e.loss, e.perplexity);
    if (e.bits_per_byte > 0) std::printf(", bits/byte %.4f", e.bits_per_byte);
    std::printf(" (%lld tokens)\n", (long long)e.tokens);
  }
  std::printf("wrote %s\n", model_path.c_str());
}

// `hyena train` with the model on backend Backend.
template <class Backend>
void run_train_on(const train_cli_options& o) {
  HYENA_CHECK(o.steps > 0 && o.batch > 0 && o.grad_accum > 0 && o.seq >= 0,
              "train: --steps, --batch and --grad-accum must be positive and --seq >= 0");
  HYENA_CHECK(o.arch.empty() != o.teacher.empty(), "train: give exactly one of --arch (a new model) and --teacher");
  HYENA_CHECK(std::filesystem::is_regular_file(o.train_path), "train: --train file ", o.train_path, " not found");
  if (!o.teacher.empty()) {  // continue training a model we can load (HF folder, llama2.c, ours)
    with_any_model_on<Backend>(o.teacher, [&](auto& start, const std::string& arch) {
      using Model = std::decay_t<decltype(start)>;
      auto train_tokens = open_tokens(o.train_path, "--train", start.config().vocab);
      train_model<Model>(o, arch, train_tokens, start.config(), &start);
    });
    return;
  }
  with_arch_on<Backend>(o.arch, [&](auto tag) {
    using Model = typename decltype(tag)::type;
    io::token_file probe(o.train_path, false);
    auto cfg = model_shape<Model>(o, probe.vocab());
    auto train_tokens = open_tokens(o.train_path, "--train", cfg.vocab);
    train_model<Model>(o, o.arch, train_tokens, cfg);
  });
}

}  // namespace hyena::cli
