// cuda/context.hpp: the explicit context every cuda op receives.
//
// It owns one stream (every op of this context runs on it, in order), a cuBLAS handle bound
// to that stream, cuFFT plans cached by (n, batch, type), and one growable scratch workspace.
// Nothing is global: two contexts share no state. The stream is a blocking one, so the legacy
// default stream (device_memory's plain cudaMemcpy) stays ordered with it.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <typeindex>
#include <tuple>

#include "check.hpp"

namespace hyena::backend {

class cuda_context {
 public:
  explicit cuda_context(int device = 0, bool allow_tf32 = false) : device_(device) {
    int count = 0;
    HYENA_CUDA_CHECK(cudaGetDeviceCount(&count));
    HYENA_CHECK(device >= 0 && device < count, "cuda_context: device ", device, " does not exist (", count,
                " devices)");
    HYENA_CUDA_CHECK(cudaSetDevice(device));
    HYENA_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device));
    HYENA_CUDA_CHECK(cudaStreamCreate(&stream_));
    cublasStatus_t s = cublasCreate(&cublas_);
    if (s != CUBLAS_STATUS_SUCCESS) {
      cudaStreamDestroy(stream_);
      HYENA_CUBLAS_CHECK(s);
    }
    HYENA_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    set_allow_tf32(allow_tf32);
  }

  ~cuda_context() {
    // Errors are ignored here: a destructor must not throw.
    cudaStreamSynchronize(stream_);
    for (auto& [key, plan] : plans_) cufftDestroy(plan);
    if (workspace_) cudaFree(workspace_);
    if (host_pinned_) cudaFreeHost(host_pinned_);
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }

  cuda_context(const cuda_context&) = delete;
  cuda_context& operator=(const cuda_context&) = delete;

  int device() const { return device_; }
  int sm_count() const { return sm_count_; }
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }

  // TF32 tensor cores for fp32 GEMMs: faster, ~1e-3 relative error. Off by default so the
  // cuda backend matches cpu_ref to float rounding.
  bool allow_tf32() const { return allow_tf32_; }
  void set_allow_tf32(bool on) {
    HYENA_CUBLAS_CHECK(cublasSetMathMode(cublas_, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    allow_tf32_ = on;
  }

  void synchronize() const { HYENA_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  // At least `bytes` of device scratch, valid until the next call to workspace(). An op asks
  // once for everything it needs and carves it up. Growing waits for the stream so that no
  // queued kernel still uses the old buffer when it is freed.
  void* workspace(std::size_t bytes) {
    if (bytes > workspace_bytes_) {
      HYENA_CUDA_CHECK(cudaStreamSynchronize(stream_));
      if (workspace_) HYENA_CUDA_CHECK(cudaFree(workspace_));
      workspace_ = nullptr;
      workspace_bytes_ = 0;
      std::size_t grown = bytes + bytes / 4;  // some headroom so slowly growing calls do not thrash
      HYENA_CUDA_CHECK(cudaMalloc(&workspace_, grown));
      workspace_bytes_ = grown;
    }
    return workspace_;
  }
  std::size_t workspace_bytes() const { return workspace_bytes_; }

  // A small pinned host buffer for results read back by ops (loss sums, id checks).
  void* host_scratch(std::size_t bytes) {
    if (bytes > host_pinned_bytes_) {
      HYENA_CUDA_CHECK(cudaStreamSynchronize(stream_));
      if (host_pinned_) HYENA_CUDA_CHECK(cudaFreeHost(host_pinned_));
      host_pinned_ = nullptr;
      host_pinned_bytes_ = 0;
      HYENA_CUDA_CHECK(cudaMallocHost(&host_pinned_, bytes));
      host_pinned_bytes_ = bytes;
    }
    return host_pinned_;
  }

  // A 1-D cuFFT plan of size n over `batch` contiguous signals (real rows n apart, complex rows
  // n/2+1 apart), created on first use and bound to this context's stream.
  cufftHandle fft_plan(int n, int batch, cufftType type) {
    auto key = std::make_tuple(n, batch, int(type));
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    cufftHandle plan = 0;
    int dims[1] = {n};
    HYENA_CUFFT_CHECK(cufftPlanMany(&plan, 1, dims, nullptr, 1, 0, nullptr, 1, 0, type, batch));
    cufftResult r = cufftSetStream(plan, stream_);
    if (r != CUFFT_SUCCESS) {
      cufftDestroy(plan);
      HYENA_CUFFT_CHECK(r);
    }
    plans_.emplace(key, plan);
    return plan;
  }
  std::size_t fft_plan_count() const { return plans_.size(); }

  // The single instance of State owned by this context, created on first use (host_context's
  // rule: layers keep their scratch tensors, in device memory here, this way).
  template <class State>
  State& state() {
    auto it = states_.find(std::type_index(typeid(State)));
    if (it == states_.end()) it = states_.emplace(std::type_index(typeid(State)), std::make_shared<State>()).first;
    return *static_cast<State*>(it->second.get());
  }

 private:
  int device_ = 0;
  int sm_count_ = 1;
  bool allow_tf32_ = false;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::map<std::tuple<int, int, int>, cufftHandle> plans_;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  void* host_pinned_ = nullptr;
  std::size_t host_pinned_bytes_ = 0;
  std::map<std::type_index, std::shared_ptr<void>> states_;  // see state()
};

}  // namespace hyena::backend
