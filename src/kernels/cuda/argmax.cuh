// Greedy sampling on the device: ids[r] = first index of the maximum of logits[r, :V].
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace petrel::kernels::cuda {

void LaunchArgMax(int32_t* ids, const float* logits, int64_t rows, int64_t V, cudaStream_t stream);

}  // namespace petrel::kernels::cuda
