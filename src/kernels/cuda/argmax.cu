#include "kernels/cuda/argmax.cuh"

#include <cfloat>

#include "kernels/cuda/common.cuh"

namespace petrel::kernels::cuda {

namespace {

constexpr int kThreads = 1024;

// (value, index) with ties to the smaller index, so the result is the first maximum like
// std::max_element. NaN never wins (comparisons with it are false).
__device__ __forceinline__ void Better(float& v, int& i, float ov, int oi) {
  if (ov > v || (ov == v && oi < i)) v = ov, i = oi;
}

// One block per row: each thread scans a strided slice (16-byte loads when the row allows),
// then warp shuffles and one shared-memory pass.
__global__ void __launch_bounds__(kThreads)
    ArgMaxKernel(int32_t* ids, const float* __restrict__ logits, int64_t V, bool vec) {
  PdlLaunchDependents();
  PdlWait();
  const float* row = logits + (int64_t)blockIdx.x * V;
  float best = -FLT_MAX;
  int bi = INT_MAX;
  if (vec) {
    for (int64_t j = threadIdx.x * 4; j < V; j += kThreads * 4) {
      const float4 v = *reinterpret_cast<const float4*>(row + j);
      Better(best, bi, v.x, (int)j);
      Better(best, bi, v.y, (int)j + 1);
      Better(best, bi, v.z, (int)j + 2);
      Better(best, bi, v.w, (int)j + 3);
    }
  } else {
    for (int64_t j = threadIdx.x; j < V; j += kThreads) Better(best, bi, row[j], (int)j);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    Better(best, bi, ov, oi);
  }
  __shared__ float sv[kThreads / 32];
  __shared__ int si[kThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sv[warp] = best, si[warp] = bi;
  __syncthreads();
  if (warp == 0) {
    best = sv[lane], bi = si[lane];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, best, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      Better(best, bi, ov, oi);
    }
    // All NaN / -inf rows: index 0, as the host scan gives.
    if (lane == 0) ids[blockIdx.x] = bi == INT_MAX ? 0 : bi;
  }
}

}  // namespace

void LaunchArgMax(int32_t* ids, const float* logits, int64_t rows, int64_t V, cudaStream_t stream) {
  if (rows == 0) return;
  const bool vec = V % 4 == 0 && (uintptr_t)logits % 16 == 0;
  LaunchPdl(ArgMaxKernel, (unsigned)rows, kThreads, 0, stream, ids, logits, V, vec);
}

}  // namespace petrel::kernels::cuda
