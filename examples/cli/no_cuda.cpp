// no_cuda.cpp: --device cuda in a CLI built without CUDA: one clear error (cuda_commands.hpp).
#ifndef HYENA_CLI_WITH_CUDA
#include <hyena/config.hpp>

#include "cuda_commands.hpp"

namespace hyena::cli {
namespace {
[[noreturn]] void no_cuda() {
  HYENA_FAIL("--device cuda: this hyena was built without CUDA (configure with -DHYENA_WITH_CUDA=ON on a machine "
             "with the CUDA toolkit; docs/cuda.md)");
}
}  // namespace

void train_on_cuda(const train_cli_options&) { no_cuda(); }
void distill_on_cuda(const distill_args&) { no_cuda(); }
void eval_on_cuda(const eval_cli_options&) { no_cuda(); }
void generate_on_cuda(const generate_cli_options&) { no_cuda(); }
}  // namespace hyena::cli
#endif
