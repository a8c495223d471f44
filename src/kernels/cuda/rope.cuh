// Rotary position embedding, "rotate_half" form (pairs i, i + head_dim/2), in place on
// x [T, n_heads, head_dim] f32 at positions[T] (device). inv_freq [head_dim/2] on device.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace petrel::kernels::cuda {

struct RopeArgs {
  float* x = nullptr;
  const int32_t* positions = nullptr;
  const float* inv_freq = nullptr;
  int64_t n_tokens = 0;
  int n_heads = 0;
  int head_dim = 0;
  float attention_scaling = 1.0f;
};
void LaunchRope(const RopeArgs& a, cudaStream_t stream);

}  // namespace petrel::kernels::cuda
