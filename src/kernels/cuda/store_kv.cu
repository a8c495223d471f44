#include "kernels/cuda/store_kv.cuh"

#include "kernels/cuda/common.cuh"

namespace petrel::kernels::cuda {

namespace {

// One block per token; threads stride over the K and V rows (round to nearest even for bf16, as
// the CPU's F32ToBF16).
template <typename KvT>
__global__ void StoreKvKernel(KvT* __restrict__ k_pool, KvT* __restrict__ v_pool,
                              const float* __restrict__ k, const float* __restrict__ v,
                              const int64_t* __restrict__ slots, int64_t row) {
  PdlLaunchDependents();
  PdlWait();
  const int64_t t = blockIdx.x;
  const int64_t dst = slots[t] * row;
  for (int64_t i = threadIdx.x; i < row; i += blockDim.x) {
    k_pool[dst + i] = FromF32<KvT>(k[t * row + i]);
    v_pool[dst + i] = FromF32<KvT>(v[t * row + i]);
  }
}

}  // namespace

void LaunchStoreKv(void* k_pool, void* v_pool, Elem kv_elem, const float* k, const float* v,
                   const int64_t* slots, int n_tokens, int64_t row, cudaStream_t stream) {
  if (n_tokens == 0) return;
  DispatchElem(kv_elem, [&](auto tag_) {
    using KvT = ElemType<decltype(tag_)>;
    LaunchPdl(StoreKvKernel<KvT>, n_tokens, 256, 0, stream, static_cast<KvT*>(k_pool),
              static_cast<KvT*>(v_pool), k, v, slots, row);
  });
}

}  // namespace petrel::kernels::cuda
