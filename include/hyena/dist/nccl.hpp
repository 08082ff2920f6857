// dist/nccl.hpp: the communicator for device buffers, over NCCL, started over a host one.
//
// As llm.c does: one process per GPU, launched by mpirun; rank 0 makes an ncclUniqueId and the
// host communicator (dist/mpi.hpp) broadcasts it; every rank then joins the NCCL communicator
// with ncclCommInitRank. Each rank must select its own GPU (cudaSetDevice) first, for example
// the local rank (OMPI_COMM_WORLD_LOCAL_RANK): NCCL refuses two ranks on one device.
//
// Where the data lives decides the path: device (or managed) memory goes through NCCL on this
// communicator's stream; host memory (a loss, a step counter) through the host communicator.
// So the trainer's calls work unchanged with a CUDA model. Every call returns once the
// operation is complete (the stream is synchronised), as the communicator interface promises.
//
// Needs nccl.h and libnccl (the CUDA toolkit's, or Debian's libnccl-dev) and the CUDA runtime;
// no other hyena header includes this one.
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "communicator.hpp"

namespace hyena::dist {

class nccl_communicator final : public communicator {
 public:
  // host: the communicator that started the ranks (its rank and size are this one's).
  explicit nccl_communicator(communicator& host) : host_(host) {
    ncclUniqueId id{};
    if (host_.is_root()) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host_.broadcast(&id, sizeof id, 0);
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(ncclCommInitRank(&comm_, host_.size(), id, host_.rank()), "ncclCommInitRank");
  }
  nccl_communicator(const nccl_communicator&) = delete;
  nccl_communicator& operator=(const nccl_communicator&) = delete;
  ~nccl_communicator() override {
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  std::string name() const override { return "nccl"; }

  void all_reduce_sum(float* x, std::size_t n) override { reduce(x, n, ncclFloat); }
  void all_reduce_sum(double* x, std::size_t n) override { reduce(x, n, ncclDouble); }

  void broadcast(void* data, std::size_t bytes, int root) override {
    if (!on_device(data)) return host_.broadcast(data, bytes, root);
    check(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
    finish("ncclBroadcast");
  }

  void all_gather(float* x, const std::vector<std::size_t>& counts) override { gather(x, counts, ncclFloat); }
  void all_gather(double* x, const std::vector<std::size_t>& counts) override { gather(x, counts, ncclDouble); }

  void barrier() override { host_.barrier(); }

  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_);  // frees the other ranks' pending NCCL work
    comm_ = nullptr;
    host_.abort(code);
    std::exit(code);  // host_.abort does not return; this keeps [[noreturn]] honest if it did
  }

  cudaStream_t stream() const { return stream_; }

 private:
  static void check(ncclResult_t r, const char* call) {
    if (r != ncclSuccess) HYENA_FAIL("nccl: ", call, " failed: ", ncclGetErrorString(r));
  }
  static void check_cuda(cudaError_t e, const char* call) {
    if (e != cudaSuccess) HYENA_FAIL("nccl: ", call, " failed: ", cudaGetErrorString(e));
  }
  static bool on_device(const void* p) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      cudaGetLastError();  // a plain host pointer on older runtimes: clear the error
      return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
  }
  void finish(const char* call) { check_cuda(cudaStreamSynchronize(stream_), call); }

  template <class T>
  void reduce(T* x, std::size_t n, ncclDataType_t type) {
    if (!on_device(x)) return host_.all_reduce_sum(x, n);
    check(ncclAllReduce(x, x, n, type, ncclSum, comm_, stream_), "ncclAllReduce");
    finish("ncclAllReduce");
  }

  // NCCL's all-gather wants equal pieces; unequal ones are one broadcast per rank, grouped.
  template <class T>
  void gather(T* x, const std::vector<std::size_t>& counts, ncclDataType_t type) {
    HYENA_CHECK(counts.size() == std::size_t(size()), "nccl: all_gather with ", counts.size(), " pieces for ", size(),
                " ranks");
    if (!on_device(x)) return host_.all_gather(x, counts);
    check(ncclGroupStart(), "ncclGroupStart");
    std::size_t offset = 0;
    for (int r = 0; r < size(); ++r) {
      check(ncclBroadcast(x + offset, x + offset, counts[std::size_t(r)], type, r, comm_, stream_), "ncclBroadcast");
      offset += counts[std::size_t(r)];
    }
    check(ncclGroupEnd(), "ncclGroupEnd");
    finish("all_gather");
  }

  communicator& host_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace hyena::dist
