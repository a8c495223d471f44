// RMSNorm over rows: out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w, rows of length d.
// Also the per-head q/k norm of Qwen3 (x viewed as [T * n_heads, head_dim]). out may alias x.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/elem.h"

namespace petrel::kernels::cuda {

void LaunchRmsNorm(float* out, const float* x, const void* w, Elem w_elem, int64_t rows,
                   int64_t d, float eps, cudaStream_t stream);
// Fused residual add + RMSNorm: x += y, then out = RmsNorm(x) * w (rows of length d). out must not
// alias x or y.
void LaunchAddRmsNorm(float* out, float* x, const float* y, const void* w, Elem w_elem,
                      int64_t rows, int64_t d, float eps, cudaStream_t stream);

}  // namespace petrel::kernels::cuda
