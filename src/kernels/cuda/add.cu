#include "kernels/cuda/add.cuh"
#include "kernels/cuda/common.cuh"

namespace petrel::kernels::cuda {

namespace {

// Four elements per thread with 16-byte accesses where the pointers allow it; a scalar tail.
__global__ void AddKernel(float* __restrict__ x, const float* __restrict__ y, int64_t n) {
  PdlLaunchDependents();
  PdlWait();
  const int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
  if (i + 4 <= n) {
    float4 a = *reinterpret_cast<float4*>(x + i);
    const float4 b = *reinterpret_cast<const float4*>(y + i);
    a.x += b.x;
    a.y += b.y;
    a.z += b.z;
    a.w += b.w;
    *reinterpret_cast<float4*>(x + i) = a;
  } else {
    for (int64_t j = i; j < n; ++j) x[j] += y[j];
  }
}

__global__ void AddScalarKernel(float* __restrict__ x, const float* __restrict__ y, int64_t n) {
  PdlLaunchDependents();
  PdlWait();
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

}  // namespace

void LaunchAdd(float* x, const float* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  const bool aligned = ((uintptr_t)x % 16 == 0) && ((uintptr_t)y % 16 == 0);
  if (aligned) {
    const int64_t threads = (n + 3) / 4;
    LaunchPdl(AddKernel, (unsigned)((threads + 255) / 256), 256, 0, stream, x, y, n);
  } else {
    LaunchPdl(AddScalarKernel, (unsigned)((n + 255) / 256), 256, 0, stream, x, y, n);
  }
}

}  // namespace petrel::kernels::cuda
