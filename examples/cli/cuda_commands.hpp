// cuda_commands.hpp: train, distill, eval and generate with the model on the GPU (--device cuda).
// Defined in cuda_commands.cu, compiled by nvcc, when the CLI is built with CUDA (HYENA_WITH_CUDA);
// otherwise no_cuda.cpp defines them to say so.
#pragma once

namespace hyena::cli {
struct train_cli_options;
struct distill_args;
struct eval_cli_options;
struct generate_cli_options;

void train_on_cuda(const train_cli_options& o);
void distill_on_cuda(const distill_args& a);
void eval_on_cuda(const eval_cli_options& o);
void generate_on_cuda(const generate_cli_options& o);
}  // namespace hyena::cli
