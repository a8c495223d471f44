#include "kernels/cuda/embedding.cuh"

#include "kernels/cuda/common.cuh"

namespace petrel::kernels::cuda {

namespace {

// One block per output row; threads stride over the row.
template <typename T>
__global__ void EmbeddingKernel(float* __restrict__ out, const T* __restrict__ table,
                                const int32_t* __restrict__ ids, int64_t d) {
  PdlLaunchDependents();
  PdlWait();
  const int64_t t = blockIdx.x;
  const T* src = table + (int64_t)ids[t] * d;
  float* dst = out + t * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) dst[i] = ToF32(src[i]);
}

}  // namespace

void LaunchEmbedding(float* out, const void* table, Elem table_elem, const int32_t* ids, int n,
                     int64_t d, cudaStream_t stream) {
  if (n == 0) return;
  DispatchElem(table_elem, [&](auto tag_) {
    using T = ElemType<decltype(tag_)>;
    LaunchPdl(EmbeddingKernel<T>, n, 256, 0, stream, out, static_cast<const T*>(table), ids, d);
  });
}

void LaunchGatherRows(float* out, const float* x, const int32_t* rows, int n, int64_t d,
                      cudaStream_t stream) {
  if (n == 0) return;
  LaunchPdl(EmbeddingKernel<float>, n, 256, 0, stream, out, x, rows, d);
}

}  // namespace petrel::kernels::cuda
