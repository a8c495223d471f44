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

}  // namespace

void LaunchRmsNorm(float* out, const float* x, const void* w, Elem w_elem, int64_t rows,
                   int64_t d, float eps, cudaStream_t stream) {
  if (rows == 0) return;
  const unsigned blocks = (unsigned)((rows + kWarps - 1) / kWarps);
  DispatchElem(w_elem, [&](auto tag_) {
    using W = ElemType<decltype(tag_)>;
    RmsNormKernel<W><<<blocks, kWarps * 32, 0, stream>>>(out, x, static_cast<const W*>(w), rows,
                                                         d, eps);
  });
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace petrel::kernels::cuda
