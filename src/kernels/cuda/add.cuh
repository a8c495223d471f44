// x += y over n f32 elements (the residual add).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace petrel::kernels::cuda {

void LaunchAdd(float* x, const float* y, int64_t n, cudaStream_t stream);

}  // namespace petrel::kernels::cuda
