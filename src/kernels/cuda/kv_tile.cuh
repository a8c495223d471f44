// Device helpers shared by the decode and prefill attention kernels: cp.async 16-byte copies
// global -> shared (sm_80+ PTX `cp.async.cg`) and the widening of one 16-byte piece of a cached
// K/V row (8 bf16/f16 or 4 f32 elements) to f32.
#pragma once

#include "kernels/cuda/common.cuh"

namespace petrel::kernels::cuda {

__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void CpAsyncWaitAll() { asm volatile("cp.async.wait_all;" ::: "memory"); }

// One 16-byte piece of a K/V row (in shared or global memory) as f32.
template <typename KvT>
__device__ __forceinline__ void LoadPiece(const KvT* p, float (&v)[16 / sizeof(KvT)]) {
  if constexpr (sizeof(KvT) == 2) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const KvT* e = reinterpret_cast<const KvT*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = ToF32(e[i]);
  } else {
    const float4 r = *reinterpret_cast<const float4*>(p);
    v[0] = r.x, v[1] = r.y, v[2] = r.z, v[3] = r.w;
  }
}

}  // namespace petrel::kernels::cuda
