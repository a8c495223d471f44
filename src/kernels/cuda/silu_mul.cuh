// out = silu(gate) * up over n f32 elements (SwiGLU). out may alias gate.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace petrel::kernels::cuda {

void LaunchSiluMul(float* out, const float* gate, const float* up, int64_t n, cudaStream_t stream);

}  // namespace petrel::kernels::cuda
