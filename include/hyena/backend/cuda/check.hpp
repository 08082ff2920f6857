// cuda/check.hpp: status checks for CUDA runtime, cuBLAS and cuFFT calls. A failing call
// throws hyena::error naming the call, where it was made and the library's error string.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include "../../config.hpp"

namespace hyena::backend::cuda_detail {

inline const char* cufft_error_string(cufftResult r) {
  switch (r) {
    case CUFFT_SUCCESS:
      return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN:
      return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED:
      return "CUFFT_ALLOC_FAILED";
    case CUFFT_INVALID_TYPE:
      return "CUFFT_INVALID_TYPE";
    case CUFFT_INVALID_VALUE:
      return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR:
      return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED:
      return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED:
      return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE:
      return "CUFFT_INVALID_SIZE";
    case CUFFT_NO_WORKSPACE:
      return "CUFFT_NO_WORKSPACE";
    case CUFFT_NOT_IMPLEMENTED:
      return "CUFFT_NOT_IMPLEMENTED";
    case CUFFT_NOT_SUPPORTED:
      return "CUFFT_NOT_SUPPORTED";
    default:
      return "unknown cuFFT error";
  }
}

inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess)
    ::hyena::detail::fail(file, line, "CUDA call ", call, " failed: ", cudaGetErrorName(e), ": ",
                          cudaGetErrorString(e));
}
inline void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    ::hyena::detail::fail(file, line, "cuBLAS call ", call, " failed: ", cublasGetStatusName(s), ": ",
                          cublasGetStatusString(s));
}
inline void check_cufft(cufftResult r, const char* call, const char* file, int line) {
  if (r != CUFFT_SUCCESS)
    ::hyena::detail::fail(file, line, "cuFFT call ", call, " failed: ", cufft_error_string(r), " (", int(r), ")");
}

}  // namespace hyena::backend::cuda_detail

#define HYENA_CUDA_CHECK(call) ::hyena::backend::cuda_detail::check_cuda((call), #call, __FILE__, __LINE__)
#define HYENA_CUBLAS_CHECK(call) ::hyena::backend::cuda_detail::check_cublas((call), #call, __FILE__, __LINE__)
#define HYENA_CUFFT_CHECK(call) ::hyena::backend::cuda_detail::check_cufft((call), #call, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors surface here, not at the next sync.
#define HYENA_CUDA_CHECK_LAUNCH(name) \
  ::hyena::backend::cuda_detail::check_cuda(cudaGetLastError(), "launch of " name, __FILE__, __LINE__)
