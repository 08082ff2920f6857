// dist/communicator.hpp: the collective operations data-parallel training needs, and the
// single-process implementation that makes every one of them a no-op.
//
// Data parallelism (as in llm.c and PyTorch DDP): every rank holds the whole model, reads its
// own rows of each batch, and the gradients are summed across ranks before clipping and the
// optimizer step, so every rank takes the same step. The trainer needs only:
//   rank(), size()            who this process is, out of how many;
//   all_reduce_sum(x, n)      x <- sum over ranks of x, in place (float or double, host or, for
//                             a device communicator, device memory);
//   broadcast(x, bytes, r)    rank r's bytes to every rank;
//   all_gather(x, counts)     every rank's contiguous piece of x to every rank, in place (ZeRO-1);
//   barrier(), abort(code)    synchronise; end the whole job (no rank left waiting).
// Implementations: `single_process` (here), `mpi_communicator` (dist/mpi.hpp, OpenMPI on host
// buffers) and `nccl_communicator` (dist/nccl.hpp, device buffers, its id sent over MPI).
// A communicator's calls are collective: every rank makes the same calls in the same order.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "../config.hpp"

namespace hyena::dist {

class communicator {
 public:
  virtual ~communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // x[0, n) <- the element-wise sum of every rank's x[0, n).
  virtual void all_reduce_sum(float* x, std::size_t n) = 0;
  virtual void all_reduce_sum(double* x, std::size_t n) = 0;
  // bytes [0, n) of rank `root`'s buffer copied into every rank's.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  // x holds size() consecutive pieces, piece r of counts[r] elements; each rank's own piece is
  // sent to all (the other pieces are overwritten).
  virtual void all_gather(float* x, const std::vector<std::size_t>& counts) = 0;
  virtual void all_gather(double* x, const std::vector<std::size_t>& counts) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `code` (a failed rank must not leave the others waiting).
  [[noreturn]] virtual void abort(int code) = 0;
  // "mpi", "nccl", or "single process".
  virtual std::string name() const = 0;

  bool is_root() const { return rank() == 0; }
};

// One process: a sum over one rank is the value itself, and there is no one to wait for.
class single_process final : public communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(float*, std::size_t) override {}
  void all_reduce_sum(double*, std::size_t) override {}
  void broadcast(void*, std::size_t, int root) override {
    HYENA_CHECK(root == 0, "single_process: broadcast from rank ", root, " of 1");
  }
  void all_gather(float*, const std::vector<std::size_t>& counts) override { check_counts(counts); }
  void all_gather(double*, const std::vector<std::size_t>& counts) override { check_counts(counts); }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
  std::string name() const override { return "single process"; }

 private:
  static void check_counts(const std::vector<std::size_t>& counts) {
    HYENA_CHECK(counts.size() == 1, "single_process: all_gather with ", counts.size(), " pieces for 1 rank");
  }
};

// The communicator to use when a caller gives none.
inline communicator& local() {
  static single_process one;
  return one;
}

// Convenience over the virtual interface: one value summed or averaged over the ranks, and a
// string broadcast from the root (its length first).
inline double all_reduce_sum(communicator& c, double v) {
  c.all_reduce_sum(&v, 1);
  return v;
}
inline double all_reduce_mean(communicator& c, double v) { return all_reduce_sum(c, v) / double(c.size()); }

inline std::string broadcast_string(communicator& c, std::string s, int root = 0) {
  std::size_t n = s.size();
  c.broadcast(&n, sizeof n, root);
  s.resize(n);
  if (n > 0) c.broadcast(s.data(), n, root);
  return s;
}

// Splits n elements into size() contiguous pieces, as even as they can be (the first n % size
// pieces one longer): ZeRO-1's ownership and the evaluation split.
inline std::vector<std::size_t> even_pieces(std::size_t n, int size) {
  HYENA_CHECK(size > 0, "even_pieces: size must be positive, got ", size);
  std::vector<std::size_t> counts(std::size_t(size), n / std::size_t(size));
  for (std::size_t r = 0; r < n % std::size_t(size); ++r) ++counts[r];
  return counts;
}

}  // namespace hyena::dist
