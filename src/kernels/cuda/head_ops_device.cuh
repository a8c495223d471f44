// Device helpers for the per-head ops (q/k RMSNorm per head, then RoPE), shared by the HeadOps
// kernel and the decode attention kernel that does them itself (decode_attention.cu), so both
// compute bit-identical values. Device code only: include from .cu files.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/common.cuh"

namespace petrel::kernels::cuda {

// A warp normalises one head's vector held in shared memory (sr[0, hd), each lane its strided
// elements; ss = this lane's sum of squares of them) in place, as the RmsNorm kernel does:
// w * (x * (1 / sqrt(mean + eps))). The caller syncs the warp before sr is read across lanes.
__device__ __forceinline__ void WarpNormHead(float* sr, int hd, float ss, const float* w, float eps,
                                             int lane) {
  ss = WarpSum(ss);
  const float inv = 1.0f / sqrtf(ss / (float)hd + eps);
  for (int i = lane; i < hd; i += 32) sr[i] = w[i] * (sr[i] * inv);
}

// RoPE ("rotate_half") of the pair (x0, x1) = (x[i], x[i + hd/2]) at position pos: the f32 angle
// pos * inv_freq_i, its cos/sin taken in double (as LaunchRope), times attention_scaling.
__device__ __forceinline__ void RopePair(float pos, float inv_freq_i, float scaling, float x0,
                                         float x1, float& r0, float& r1) {
  const float ang = pos * inv_freq_i;
  double sd, cd;
  sincos((double)ang, &sd, &cd);
  const float cs = (float)cd * scaling, sn = (float)sd * scaling;
  r0 = x0 * cs - x1 * sn;
  r1 = x1 * cs + x0 * sn;
}

}  // namespace petrel::kernels::cuda
