// A rank that dies in the middle of a data-parallel run: rank 1 kills itself (SIGKILL) after
// a few training steps while rank 0 goes on into the next gradient all-reduce. Run by
// mpi_failure_test.sh, which expects mpirun to end the whole job promptly with an error
// instead of leaving rank 0 waiting for ever.
#include <hyena/dist/mpi.hpp>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/train/trainer.hpp>

#include <csignal>
#include <cstdio>

#include "../support/corpus.hpp"

using namespace hyena;

int main(int argc, char** argv) {
  dist::mpi_communicator world(&argc, &argv);
  using model = models::gpt_neox<backend::cpu>;
  model m(models::gpt_neox_config(256, 32, 2, 4, 64, 32));
  rng r(1);
  m.init(r);
  train::trainer_options o;
  o.batch = 2;
  o.seq = 32;
  o.steps = 1000000;  // far more than it could finish: only the death of rank 1 ends it
  o.progress = false;
  o.comm = &world;
  backend::host_context ctx;
  const auto tokens = testing::toy_corpus(20000);
  // Rank 1's step function kills its own process at its 5th micro-batch.
  index_t calls = 0;
  train::trainer<model> t(m, o);
  auto lm = t.language_model_step();
  t.run(ctx, std::span<const std::int32_t>(tokens), {}, [&](backend::host_context& c, train::token_batch& b, double scale) {
    if (world.rank() == 1 && ++calls == 5) {
      std::fprintf(stderr, "rank 1: killing itself with SIGKILL at micro-batch 5\n");
      std::fflush(stderr);
      std::raise(SIGKILL);
    }
    return lm(c, b, scale);
  });
  std::fprintf(stderr, "rank %d: the run finished, which it must not\n", world.rank());
  return 0;
}
