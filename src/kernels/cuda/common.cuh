// Device helpers shared by the kernels: element loads/stores as f32 for the storage types the
// backend sees (f32, f16, bf16), and warp reductions. Every launch is followed by
// CUDA_CHECK(cudaGetLastError()), which reports a bad configuration at the launch site.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elem.h"

namespace petrel::kernels::cuda {

__device__ __forceinline__ float ToF32(float v) { return v; }
__device__ __forceinline__ float ToF32(__half v) { return __half2float(v); }
__device__ __forceinline__ float ToF32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T FromF32(float v);
template <>
__device__ __forceinline__ float FromF32<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half FromF32<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromF32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Programmatic dependent launch (PDL, sm_90). Kernels launched with LaunchPdl may start while the
// kernel before them in the stream is still running. Every such kernel:
//  - calls PdlLaunchDependents() early (lets the next kernel start as soon as all blocks of this
//    one have called it or exited), and
//  - calls PdlWait() in every block before it reads anything an earlier kernel of the step wrote
//    (activations, this step's KV entries) and before it writes anything; only immutable data
//    (weights, KV entries of earlier steps, index arrays uploaded before the step) may be read
//    before it. PdlWait returns once the previous kernel has completed and its writes are
//    visible; since that kernel waited on its own predecessor, the chain is ordered as without
//    PDL.
// Both are no-ops when the kernel was launched without the attribute.
__device__ __forceinline__ void PdlWait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void PdlLaunchDependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// Whether launches use PDL (PETREL_CUDA_PDL=0 turns it off, to measure what it saves).
bool PdlEnabled();

// kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute (when enabled), then a
// launch check.
template <typename... KArgs, typename... Args>
void LaunchPdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
               Args&&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = PdlEnabled() ? 1 : 0;
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

// Calls body(tag) with tag a null T* for the device type T of `e`; the body recovers T with
// ElemType<decltype(tag)> (C++17: the .cu files are compiled as C++17, see CMakeLists.txt).
template <typename F>
void DispatchElem(Elem e, F&& body) {
  switch (e) {
    case Elem::kF32: body(static_cast<float*>(nullptr)); return;
    case Elem::kF16: body(static_cast<__half*>(nullptr)); return;
    case Elem::kBF16: body(static_cast<__nv_bfloat16*>(nullptr)); return;
  }
}
template <typename Tag>
using ElemType = std::remove_pointer_t<Tag>;

}  // namespace petrel::kernels::cuda
