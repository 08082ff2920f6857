// cuda_commands.cu: the commands of cuda_commands.hpp with the model on backend::cuda (GPU 0).
// The only nvcc-compiled part of the CLI: the same command code as the CPU's (*_command.hpp),
// instantiated for the device backend. Models are read on the host and uploaded
// (with_any_model_on); training and distillation write the same checkpoints as on the CPU.
#include <cuda_runtime.h>

#include <hyena/backend/cuda/cuda.hpp>

#include "cuda_commands.hpp"
#include "distill_command.hpp"
#include "eval_command.hpp"
#include "generate_command.hpp"
#include "train_command.hpp"

namespace hyena::cli {
namespace {
// A visible GPU and one process: under mpirun the ranks would all take GPU 0 and the
// communicator all-reduces host memory, so data-parallel GPU runs are refused for now.
void require_gpu(const char* command) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  HYENA_CHECK(e == cudaSuccess && count > 0, command, " --device cuda: no CUDA device is visible (",
              e == cudaSuccess ? "the driver reports 0 devices" : cudaGetErrorString(e), ")");
  HYENA_CHECK(world().size() == 1, command, " --device cuda runs as one process; data-parallel GPU runs from the "
              "CLI are not supported yet (run without mpirun)");
}
}  // namespace

void train_on_cuda(const train_cli_options& o) {
  require_gpu("train");
  run_train_on<backend::cuda>(o);
}
void distill_on_cuda(const distill_args& a) {
  require_gpu("distill");
  run_distill_on<backend::cuda>(a);
}
void eval_on_cuda(const eval_cli_options& o) {
  require_gpu("eval");
  run_eval_on<backend::cuda>(o);
}
void generate_on_cuda(const generate_cli_options& o) {
  require_gpu("generate");
  run_generate_on<backend::cuda>(o);
}
}  // namespace hyena::cli
