#include "kernels/cuda/rms_norm.cuh"

#include "kernels/cuda/common.cuh"

namespace petrel::kernels::cuda {

namespace {

constexpr int kWarps = 4;  // rows per block: one warp per row

// One warp per row: lanes stride over the row accumulating squares in f32, a shuffle reduction,
// then the scaled write. Rows are short (d_model or head_dim), so a warp keeps enough loads in
// flight and no shared memory or block barrier is needed.
template <typename W>
__global__ void RmsNormKernel(float* out, const float* x, const W* __restrict__ w, int64_t rows,
                              int64_t d, float eps) {
  PdlLaunchDependents();
  PdlWait();
  const int64_t r = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float* xr = x + r * d;
  float ss = 0.0f;
  for (int64_t i = lane; i < d; i += 32) ss += xr[i] * xr[i];
  ss = WarpSum(ss);
  const float inv = 1.0f / sqrtf(ss / (float)d + eps);
  float* o = out + r * d;
  for (int64_t i = lane; i < d; i += 32) o[i] = ToF32(w[i]) * (xr[i] * inv);
}

// One block of kBlock threads per row (long rows: d_model): float4 accesses when d % 4 == 0 and
// the pointers are 16-byte aligned, f32 squares summed per thread, then warp shuffles and a
// shared-memory pass. With `y` (fused residual add) the row is first updated, x += y, and the
// normalised result is taken of the updated row; each thread re-reads only the elements it wrote.
constexpr int kBlock = 256;

template <typename W, bool kAdd, bool kVec>
__global__ void __launch_bounds__(kBlock)
    RmsNormRowKernel(float* out, float* x, const float* __restrict__ y, const W* __restrict__ w,
                     int64_t d, float eps) {
  PdlLaunchDependents();
  PdlWait();
  const int64_t r = blockIdx.x;
  float* xr = x + r * d;
  float ss = 0.0f;
  if constexpr (kVec) {
    for (int64_t i = threadIdx.x * 4; i < d; i += kBlock * 4) {
      float4 v = *reinterpret_cast<const float4*>(xr + i);
      if constexpr (kAdd) {
        const float4 u = *reinterpret_cast<const float4*>(y + r * d + i);
        v.x += u.x, v.y += u.y, v.z += u.z, v.w += u.w;
        *reinterpret_cast<float4*>(xr + i) = v;
      }
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
  } else {
    for (int64_t i = threadIdx.x; i < d; i += kBlock) {
      float v = xr[i];
      if constexpr (kAdd) {
        v += y[r * d + i];
        xr[i] = v;
      }
      ss += v * v;
    }
  }
  __shared__ float part[kBlock / 32];
  ss = WarpSum(ss);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = ss;
  __syncthreads();
  float tot = 0.0f;
#pragma unroll
  for (int i = 0; i < kBlock / 32; ++i) tot += part[i];
  const float inv = 1.0f / sqrtf(tot / (float)d + eps);
  float* o = out + r * d;
  if constexpr (kVec) {
    for (int64_t i = threadIdx.x * 4; i < d; i += kBlock * 4) {
      const float4 v = *reinterpret_cast<const float4*>(xr + i);
      float4 res;
      res.x = ToF32(w[i]) * (v.x * inv);
      res.y = ToF32(w[i + 1]) * (v.y * inv);
      res.z = ToF32(w[i + 2]) * (v.z * inv);
      res.w = ToF32(w[i + 3]) * (v.w * inv);
      *reinterpret_cast<float4*>(o + i) = res;
    }
  } else {
    for (int64_t i = threadIdx.x; i < d; i += kBlock) o[i] = ToF32(w[i]) * (xr[i] * inv);
  }
}

template <typename W, bool kAdd>
void LaunchRows(float* out, float* x, const float* y, const W* w, int64_t rows, int64_t d,
                float eps, cudaStream_t stream) {
  const bool vec = d % 4 == 0 && (uintptr_t)out % 16 == 0 && (uintptr_t)x % 16 == 0 &&
                   (!kAdd || (uintptr_t)y % 16 == 0);
  if (vec) LaunchPdl(RmsNormRowKernel<W, kAdd, true>, (unsigned)rows, kBlock, 0, stream, out, x, y, w, d, eps);
  else LaunchPdl(RmsNormRowKernel<W, kAdd, false>, (unsigned)rows, kBlock, 0, stream, out, x, y, w, d, eps);
}

}  // namespace

void LaunchAddRmsNorm(float* out, float* x, const float* y, const void* w, Elem w_elem,
                      int64_t rows, int64_t d, float eps, cudaStream_t stream) {
  if (rows == 0) return;
  DispatchElem(w_elem, [&](auto tag_) {
    using W = ElemType<decltype(tag_)>;
    LaunchRows<W, true>(out, x, y, static_cast<const W*>(w), rows, d, eps, stream);
  });
  CUDA_CHECK(cudaGetLastError());
}

void LaunchRmsNorm(float* out, const float* x, const void* w, Elem w_elem, int64_t rows,
                   int64_t d, float eps, cudaStream_t stream) {
  if (rows == 0) return;
  const unsigned blocks = (unsigned)((rows + kWarps - 1) / kWarps);
  DispatchElem(w_elem, [&](auto tag_) {
    using W = ElemType<decltype(tag_)>;
    if (d >= 512) {  // long rows (d_model): a block per row; short ones (head_dim): a warp
      LaunchRows<W, false>(out, const_cast<float*>(x), nullptr, static_cast<const W*>(w), rows, d,
                           eps, stream);
      return;
    }
    LaunchPdl(RmsNormKernel<W>, blocks, kWarps * 32, 0, stream, out, x, static_cast<const W*>(w),
              rows, d, eps);
  });
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace petrel::kernels::cuda
