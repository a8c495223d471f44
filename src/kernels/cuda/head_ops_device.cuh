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
// WarpHeadNormInv: the factor, from each lane's partial sum of squares (the decode attention
// applies it to values it holds in registers).
__device__ __forceinline__ float WarpHeadNormInv(float ss, int hd, float eps) {
  return 1.0f / sqrtf(WarpSum(ss) / (float)hd + eps);
}
__device__ __forceinline__ void WarpNormHead(float* sr, int hd, float ss, const float* w, float eps,
                                             int lane) {
  const float inv = WarpHeadNormInv(ss, hd, eps);
  for (int i = lane; i < hd; i += 32) sr[i] = w[i] * (sr[i] * inv);
}

// RoPE ("rotate_half") at position pos: the f32 angle pos * inv_freq_i, its cos/sin taken in
// double (as LaunchRope), times attention_scaling. RopeCosSin depends on the position only;
// RopeApply rotates the pair (x0, x1) = (x[i], x[i + hd/2]); RopePair does both.
__device__ __forceinline__ void RopeCosSin(float pos, float inv_freq_i, float scaling, float& cs,
                                           float& sn) {
  const float ang = pos * inv_freq_i;
  double sd, cd;
  sincos((double)ang, &sd, &cd);
  cs = (float)cd * scaling;
  sn = (float)sd * scaling;
}
__device__ __forceinline__ void RopeApply(float cs, float sn, float x0, float x1, float& r0,
                                          float& r1) {
  r0 = x0 * cs - x1 * sn;
  r1 = x1 * cs + x0 * sn;
}
__device__ __forceinline__ void RopePair(float pos, float inv_freq_i, float scaling, float x0,
                                         float x1, float& r0, float& r1) {
  float cs, sn;
  RopeCosSin(pos, inv_freq_i, scaling, cs, sn);
  RopeApply(cs, sn, x0, x1, r0, r1);
}

}  // namespace petrel::kernels::cuda
