#include "kernels/cuda/head_ops.cuh"

#include <algorithm>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/head_ops_device.cuh"

namespace petrel::kernels::cuda {

namespace {

constexpr int kWarps = 8;

// Grid (token, head group): a warp per head (heads of all entries numbered in turn, kWarps per
// block). The head's vector goes
// through a per-warp shared row: squares summed in f32 and reduced with shuffles (the RmsNorm
// kernel's arithmetic: w * (x * (1 / sqrt(mean + eps)))), then each lane rotates its pairs with
// cos/sin of the f32 angle pos * inv_freq[i] taken in double (as LaunchRope) and writes x back,
// plus the KV cache when the entry is the stored k. v (and k when it is no entry) is copied to
// the cache by all blocks of the token, a slice each.
template <typename KvT>
__global__ void __launch_bounds__(kWarps * 32) HeadOpsKernel(HeadOpsArgs a) {
  PdlLaunchDependents();
  PdlWait();
  __shared__ float row[kWarps][kMaxHeadOpsDim];
  const int64_t t = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int hd = a.head_dim, half = hd / 2;
  const float pos = (float)a.positions[t];
  const int64_t dst = a.kv.k_pool ? a.kv.slots[t] * a.kv.kv_row : 0;
  KvT* kp = static_cast<KvT*>(a.kv.k_pool);
  KvT* vp = static_cast<KvT*>(a.kv.v_pool);
  int total = 0;
  for (int e = 0; e < a.n_entries; ++e) total += a.e[e].n_heads;
  float* sr = row[warp];
  for (int item = blockIdx.y * kWarps + warp; item < total; item += gridDim.y * kWarps) {
    int e = 0, h = item;
    while (h >= a.e[e].n_heads) h -= a.e[e].n_heads, ++e;
    const HeadOpsEntry& en = a.e[e];
    float* x = en.x + (t * en.n_heads + h) * hd;
    float ss = 0.0f;
    for (int i = lane; i < hd; i += 32) {
      const float v = x[i];
      sr[i] = v;
      ss += v * v;
    }
    if (en.norm_w) WarpNormHead(sr, hd, ss, en.norm_w, en.eps, lane);
    __syncwarp();
    const bool store = e == a.kv.k_entry;
    for (int i = lane; i < half; i += 32) {
      float r0, r1;
      RopePair(pos, a.inv_freq[i], a.attention_scaling, sr[i], sr[i + half], r0, r1);
      x[i] = r0;
      x[i + half] = r1;
      if (store) {
        kp[dst + (int64_t)h * hd + i] = FromF32<KvT>(r0);
        kp[dst + (int64_t)h * hd + i + half] = FromF32<KvT>(r1);
      }
    }
    __syncwarp();  // sr is rewritten by the warp's next head
  }
  if (!a.kv.k_pool) return;
  const int64_t chunk = (a.kv.kv_row + gridDim.y - 1) / gridDim.y;
  const int64_t end = min(a.kv.kv_row, (blockIdx.y + 1) * chunk);
  for (int64_t i = blockIdx.y * chunk + threadIdx.x; i < end; i += blockDim.x) {
    vp[dst + i] = FromF32<KvT>(a.kv.v[t * a.kv.kv_row + i]);
    if (a.kv.k_entry < 0) kp[dst + i] = FromF32<KvT>(a.kv.k[t * a.kv.kv_row + i]);
  }
}

}  // namespace

void LaunchHeadOps(const HeadOpsArgs& a, cudaStream_t stream) {
  if (a.n_tokens == 0) return;
  CUDA_CHECK(a.head_dim % 2 == 0 && a.head_dim <= kMaxHeadOpsDim ? cudaSuccess
                                                                  : cudaErrorInvalidValue);
  DispatchElem(a.kv.kv_elem, [&](auto tag_) {
    using KvT = ElemType<decltype(tag_)>;
    int heads = 0;
    for (int e = 0; e < a.n_entries; ++e) heads += a.e[e].n_heads;
    const dim3 grid((unsigned)a.n_tokens, (unsigned)std::max(1, (heads + kWarps - 1) / kWarps));
    LaunchPdl(HeadOpsKernel<KvT>, grid, kWarps * 32, 0, stream, a);
  });
}

}  // namespace petrel::kernels::cuda
