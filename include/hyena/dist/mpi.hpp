// dist/mpi.hpp: the communicator over MPI (host buffers), for `mpirun -np N program ...`.
//
// Needs an MPI implementation's <mpi.h> and library (Debian: openmpi-bin libopenmpi-dev; in
// CMake, find_package(MPI) and link MPI::MPI_CXX). The library's other headers never include
// this one, so a program without MPI builds as before.
//
// Errors: the communicator is a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN, so a failed
// call throws hyena::error naming the call and MPI's own message instead of killing the process
// from inside the library; a program that cannot go on calls abort(), which ends every rank
// (MPI_Abort), so no rank is left waiting in a collective for one that is gone. A rank that dies
// (a signal, exit without MPI_Finalize) is noticed by mpirun, which ends the job.
#pragma once
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "communicator.hpp"

namespace hyena::dist {

// True when this process was started by an MPI launcher (mpirun/mpiexec of Open MPI, MPICH or
// MVAPICH, or srun with PMI): the launchers set these variables for every rank they start.
inline bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE"})
    if (const char* s = std::getenv(v); s && *s) return true;
  return false;
}

class mpi_communicator final : public communicator {
 public:
  // Initialises MPI when nobody has (threads: only the main thread calls MPI, and OpenMP
  // regions never do), and takes a duplicate of MPI_COMM_WORLD. MPI is finalised by the
  // destructor of the communicator that initialised it.
  mpi_communicator(int* argc = nullptr, char*** argv = nullptr) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_mpi_ = true;
    }
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  mpi_communicator(const mpi_communicator&) = delete;
  mpi_communicator& operator=(const mpi_communicator&) = delete;
  ~mpi_communicator() override {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (finalised) return;
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void all_reduce_sum(float* x, std::size_t n) override { reduce(x, n, MPI_FLOAT); }
  void all_reduce_sum(double* x, std::size_t n) override { reduce(x, n, MPI_DOUBLE); }

  void broadcast(void* data, std::size_t bytes, int root) override {
    HYENA_CHECK(root >= 0 && root < size_, "mpi: broadcast from rank ", root, " of ", size_);
    auto* p = static_cast<char*>(data);
    for (std::size_t done = 0; done < bytes;) {
      const int count = chunk(bytes - done);
      check(MPI_Bcast(p + done, count, MPI_BYTE, root, comm_), "MPI_Bcast");
      done += std::size_t(count);
    }
  }

  void all_gather(float* x, const std::vector<std::size_t>& counts) override { gather(x, counts, MPI_FLOAT); }
  void all_gather(double* x, const std::vector<std::size_t>& counts) override { gather(x, counts, MPI_DOUBLE); }

  void barrier() override { check(MPI_Barrier(comm_), "MPI_Barrier"); }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(comm_, code);
    std::exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest if it did
  }

  MPI_Comm handle() const { return comm_; }

 private:
  static void check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    HYENA_FAIL("mpi: ", call, " failed: ", std::string(text, std::size_t(len)));
  }
  // MPI counts are int: big buffers go in pieces of at most 2^30 elements.
  static int chunk(std::size_t left) { return int(std::min<std::size_t>(left, std::size_t(1) << 30)); }

  template <class T>
  void reduce(T* x, std::size_t n, MPI_Datatype type) {
    for (std::size_t done = 0; done < n;) {
      const int count = chunk(n - done);
      check(MPI_Allreduce(MPI_IN_PLACE, x + done, count, type, MPI_SUM, comm_), "MPI_Allreduce");
      done += std::size_t(count);
    }
  }

  template <class T>
  void gather(T* x, const std::vector<std::size_t>& counts, MPI_Datatype type) {
    HYENA_CHECK(counts.size() == std::size_t(size_), "mpi: all_gather with ", counts.size(), " pieces for ", size_,
                " ranks");
    std::vector<int> c(counts.size()), displ(counts.size());
    std::size_t offset = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      HYENA_CHECK(counts[r] <= std::size_t(INT_MAX) && offset <= std::size_t(INT_MAX), "mpi: all_gather of ",
                  counts[r], " elements at offset ", offset, " exceeds MPI's int counts");
      c[r] = int(counts[r]);
      displ[r] = int(offset);
      offset += counts[r];
    }
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, c.data(), displ.data(), type, comm_),
          "MPI_Allgatherv");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  bool owns_mpi_ = false;
};

}  // namespace hyena::dist
