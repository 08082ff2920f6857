// hyena: the command-line tool. `hyena --help` lists the subcommands.
//
// Started by an MPI launcher (`mpirun -np N hyena train|distill ...`, built with MPI), every
// rank runs the same command data parallel (docs/guide.md, "Many processes"); rank 0 alone
// prints and writes. An error on any rank ends the whole job (MPI_Abort), naming the rank.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#ifdef __linux__
#include <unistd.h>
#endif

#include <hyena/config.hpp>
#ifdef HYENA_WITH_MPI
#include <hyena/dist/mpi.hpp>
#endif

#include "commands.hpp"
#include "common.hpp"

namespace {

// Runnable tasks on this machine besides this process: the least of a few looks 5 ms apart at
// /proc/stat's procs_running (which counts this process too), so a task that only passes by
// drops out. 0 where it cannot be read.
int other_runnable_tasks() {
  long least = -1;
  for (int look = 0; look < 4; ++look) {
    if (look > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::ifstream stat("/proc/stat");
    for (std::string line; std::getline(stat, line);)
      if (line.rfind("procs_running ", 0) == 0) {
        const long running = std::atol(line.c_str() + 14) - 1;
        least = least < 0 ? running : std::min(least, running);
      }
  }
  return int(std::max(0L, least));
}

// OpenMP threads that spin at a barrier hold their cores while they wait, and a run stalls when
// another process deschedules one of them. Measured here (docs/results.md section 5,
// benchmarks/under_load.sh): beside busy processes, passive waiting (threads sleep at once) was
// faster than libgomp's default spinning; on an idle machine it was slower. The runtime reads
// its wait policy once, when the program loads, so when other tasks are running at start and
// the user chose no policy (OMP_WAIT_POLICY, or libgomp's GOMP_SPINCOUNT), the CLI starts itself
// again, once, with OMP_WAIT_POLICY=passive. If the restart fails the command runs as it was.
void restart_with_passive_waiting_if_busy(char** argv) {
#ifdef __linux__
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (other_runnable_tasks() == 0) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure
#else
  (void)argv;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  restart_with_passive_waiting_if_busy(argv);
  std::unique_ptr<hyena::dist::communicator> ranks;
#ifdef HYENA_WITH_MPI
  if (hyena::dist::launched_by_mpi()) {
    try {
      ranks = std::make_unique<hyena::dist::mpi_communicator>(&argc, &argv);
    } catch (const hyena::error& e) {
      std::fprintf(stderr, "hyena: error: %s\n", e.what());
      return 1;
    }
  }
#endif
  hyena::cli::world_slot() = ranks.get();
  auto& world = hyena::cli::world();
  const std::string where =
      world.size() > 1 ? " (rank " + std::to_string(world.rank()) + " of " + std::to_string(world.size()) + ")" : "";
  // One voice: the other ranks' standard output is dropped (their errors still reach stderr).
  if (!world.is_root() && !std::freopen("/dev/null", "w", stdout)) return 1;

  CLI::App app{"hyena: train transformer teachers and distill them into Hyena students"};
  app.require_subcommand(1);
  hyena::cli::add_prepare_command(app);
  hyena::cli::add_train_command(app);
  hyena::cli::add_distill_command(app);
  hyena::cli::add_eval_command(app);
  hyena::cli::add_generate_command(app);
  hyena::cli::add_convert_command(app);
  hyena::cli::add_demo_command(app);
  int code = 0;
  try {
    if (world.size() > 1) {  // only train and distill split their work over ranks
      const std::string sub = argc > 1 ? argv[1] : "";
      HYENA_CHECK(sub == "train" || sub == "distill", "'", sub,
                  "' runs on one process; under mpirun only 'train' and 'distill' run data parallel");
    }
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    code = world.is_root() ? app.exit(e) : (e.get_exit_code() != 0 ? 1 : 0);
  } catch (const hyena::error& e) {
    std::fprintf(stderr, "hyena: error%s: %s\n", where.c_str(), e.what());
    code = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hyena: unexpected error%s: %s\n", where.c_str(), e.what());
    code = 2;
  }
  // A rank that failed while the others may be waiting in a collective for it: end them all.
  if (code != 0 && world.size() > 1) {
    std::fflush(stderr);
    world.abort(code);
  }
  return code;
}
