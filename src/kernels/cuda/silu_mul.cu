#include "kernels/cuda/common.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace petrel::kernels::cuda {

namespace {

// silu(g) = g / (1 + exp(-g)); expf (not __expf) keeps the result within a few ulp of the CPU.
__global__ void SiluMulKernel(float* out, const float* gate, const float* __restrict__ up,
                              int64_t n) {
  PdlLaunchDependents();
  PdlWait();
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

}  // namespace

void LaunchSiluMul(float* out, const float* gate, const float* up, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  LaunchPdl(SiluMulKernel, (unsigned)((n + 255) / 256), 256, 0, stream, out, gate, up, n);
}

}  // namespace petrel::kernels::cuda
