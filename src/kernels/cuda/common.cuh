// Device helpers shared by the kernels: element loads/stores as f32 for the storage types the
// backend sees (f32, f16, bf16), and warp reductions. Every launch is followed by
// CUDA_CHECK(cudaGetLastError()), which reports a bad configuration at the launch site.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

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
