// commands.hpp: each `hyena` subcommand lives in its own cmd_<name>.cpp and adds itself here.
#pragma once
#include <CLI/CLI.hpp>

#include "common.hpp"

namespace hyena::cli {
void add_prepare_command(CLI::App& app);   // text -> token files
void add_train_command(CLI::App& app);     // a teacher or student from scratch
void add_distill_command(CLI::App& app);   // teacher -> Hyena student
void add_eval_command(CLI::App& app);      // loss / perplexity of a checkpoint
void add_generate_command(CLI::App& app);  // sampling from a checkpoint
void add_convert_command(CLI::App& app);   // a Hyena student's filters as recurrences
void add_demo_command(CLI::App& app);      // the whole pipeline, with a report

// --device, --tf32, --bf16 and --threads of the commands that run a model.
inline void add_device_options(CLI::App* sub, device_options& d) {
  sub->add_option("--device", d.name, "cpu, or cuda (GPU 0; a build with CUDA)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  sub->add_flag("--tf32", d.tf32, "cuda: float products on TF32 tensor cores (faster, about 1e-3 relative error)");
  sub->add_flag("--bf16", d.bf16,
                "cpu: products with bf16 inputs and fp32 sums, PyTorch's float32_matmul_precision 'medium' (with "
                "AVX512-BF16: products about 2x faster, inputs rounded to 8 significant bits)");
  sub->add_option("--threads", d.threads, "CPU threads (0: all)")->capture_default_str();
}
}  // namespace hyena::cli
