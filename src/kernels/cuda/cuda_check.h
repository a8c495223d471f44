// CUDA_CHECK(stmt): runs a CUDA runtime or cuBLAS call and aborts with the statement, file, line
// and the library's error string when it fails [ggml common.cuh CUDA_CHECK]. CUDA errors here are
// bugs or a broken device (out of memory included: device memory is planned up front), so they
// abort like PETREL_CHECK rather than travel as Result. Usable from .cu and .cc files alike.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace petrel::kernels::cuda {

[[noreturn]] void CudaFail(const char* stmt, const char* file, int line, const char* what);

inline void CudaCheck(cudaError_t e, const char* stmt, const char* file, int line) {
  if (e != cudaSuccess) CudaFail(stmt, file, line, cudaGetErrorString(e));
}
inline void CudaCheck(cublasStatus_t s, const char* stmt, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) CudaFail(stmt, file, line, cublasGetStatusString(s));
}

}  // namespace petrel::kernels::cuda

#define CUDA_CHECK(stmt) ::petrel::kernels::cuda::CudaCheck((stmt), #stmt, __FILE__, __LINE__)
