#include "kernels/cuda/paged_attention.cuh"

#include "kernels/cuda/common.cuh"

#include <cfloat>

namespace petrel::kernels::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kMaxGroup = 8;  // query heads per block; larger GQA groups take several blocks
constexpr int kMaxSmem = 96 * 1024;
constexpr int kMaxPieces = 16;  // 16-byte K pieces a thread preloads (head_dim <= 128 at 16 bits)

// Loads VEC consecutive elements as f32 (16-byte loads when VEC == 8 and the row is aligned).
template <typename KvT, int VEC>
__device__ __forceinline__ void LoadVec(const KvT* p, float (&v)[VEC]) {
  if constexpr (VEC == 8 && sizeof(KvT) == 2) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const KvT* e = reinterpret_cast<const KvT*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = ToF32(e[i]);
  } else if constexpr (VEC == 8 && sizeof(KvT) == 4) {
    const float4 a = *reinterpret_cast<const float4*>(p);
    const float4 b = *reinterpret_cast<const float4*>(p + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) v[i] = ToF32(p[i]);
  }
}

struct RowRange {
  int pos;    // position of this query row
  int start;  // first attended token (sliding window), end is pos + 1
};

__device__ __forceinline__ RowRange RowOf(const PagedAttentionArgs& a, int t) {
  const int s = a.row_seq[t];
  const int q_begin = a.seq_info[3 * s], q_len = a.seq_info[3 * s + 1];
  const int ctx = a.seq_info[3 * s + 2];
  const int pos = ctx - q_len + (t - q_begin);
  const int start = a.sliding_window > 0 ? max(0, pos - a.sliding_window + 1) : 0;
  return {pos, start};
}

// Grid (T, n_kv_heads * head_chunks, n_parts), kThreads threads. One block: one query row, up to
// kMaxGroup query heads of one KV head, one partition of the context.
//  1. q of those heads (times scale) into shared memory.
//  2. Scores: one thread per cached token reads its whole K row (16-byte loads) and forms the
//     dot products with every head of the group.
//  3. Softmax per head over the partition (a warp per head): running max m, sum l.
//  4. P.V: threads in groups of head_dim/VEC cover one token's V row each, several tokens at a
//     time; their partial sums meet in shared memory.
//  5. Write out / l directly (one partition) or the partial (out / l, m, l) for the merge kernel.
template <typename KvT, int VEC>
__global__ void __launch_bounds__(kThreads) PagedAttentionKernel(PagedAttentionArgs a) {
  PdlLaunchDependents();
  PdlWait();
  const int t = blockIdx.x;
  const RowRange rr = RowOf(a, t);
  const int part = blockIdx.z;
  const int lo = max(rr.start, part * kPartition);
  const int hi = min(rr.pos + 1, (part + 1) * kPartition);
  if (lo >= hi) return;  // nothing of this row's window falls in this partition
  const int n = hi - lo;
  const int hd = a.head_dim;
  const int group = a.n_heads / a.n_kv_heads;
  const int chunks = (group + kMaxGroup - 1) / kMaxGroup;
  const int kvh = blockIdx.y / chunks;
  const int g0 = kvh * group + (blockIdx.y % chunks) * kMaxGroup;  // first query head
  const int ng = min(kMaxGroup, kvh * group + group - g0);
  const int s = a.row_seq[t];
  const int32_t* table = a.block_tables + (int64_t)s * a.table_stride;
  const int64_t token_stride = (int64_t)a.n_kv_heads * hd;
  const KvT* kp = static_cast<const KvT*>(a.k_pool) + (int64_t)kvh * hd;
  const KvT* vp = static_cast<const KvT*>(a.v_pool) + (int64_t)kvh * hd;

  const int tg = hd / VEC;           // threads per V row
  const int n_slots = kThreads / tg; // V rows in flight per iteration
  extern __shared__ float smem[];
  float* qs = smem;                          // [ng, hd]
  float* sc = qs + kMaxGroup * hd;           // [ng, kPartition]
  float* red = sc + kMaxGroup * kPartition;  // [n_slots, ng, hd]
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup];

  const int64_t q_row = (int64_t)t * a.n_heads * hd;
  for (int i = threadIdx.x; i < ng * hd; i += kThreads)
    qs[i] = a.q[q_row + (int64_t)g0 * hd + i] * a.scale;
  __syncthreads();

  for (int j = threadIdx.x; j < n; j += kThreads) {
    const int tok = lo + j;
    const int64_t slot = (int64_t)table[tok / a.block_size] * a.block_size + tok % a.block_size;
    const KvT* kr = kp + slot * token_stride;
    float acc[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) acc[g] = 0.0f;
    if constexpr (VEC == 8 && sizeof(KvT) == 2) {
      // 16-bit K, head_dim <= 128: the whole row's 16-byte pieces are loaded before any is used
      // (up to 16 loads in flight per thread instead of one at a time).
      if (hd <= 8 * kMaxPieces) {
        uint4 raw[kMaxPieces];
#pragma unroll
        for (int i = 0; i < kMaxPieces; ++i)
          if (i * 8 < hd) raw[i] = *reinterpret_cast<const uint4*>(kr + i * 8);
#pragma unroll
        for (int i = 0; i < kMaxPieces; ++i) {
          if (i * 8 < hd) {
            const KvT* e = reinterpret_cast<const KvT*>(&raw[i]);
#pragma unroll
            for (int g = 0; g < kMaxGroup; ++g) {
              if (g < ng) {
#pragma unroll
                for (int x = 0; x < 8; ++x) acc[g] += qs[g * hd + i * 8 + x] * ToF32(e[x]);
              }
            }
          }
        }
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g)
          if (g < ng) sc[g * kPartition + j] = acc[g];
        continue;
      }
    }
    for (int d = 0; d < hd; d += VEC) {
      float kv[VEC];
      LoadVec<KvT, VEC>(kr + d, kv);
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g < ng) {
#pragma unroll
          for (int e = 0; e < VEC; ++e) acc[g] += qs[g * hd + d + e] * kv[e];
        }
      }
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
      if (g < ng) sc[g * kPartition + j] = acc[g];
  }
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int g = warp; g < ng; g += kThreads / 32) {
    float m = -FLT_MAX;
    for (int j = lane; j < n; j += 32) m = fmaxf(m, sc[g * kPartition + j]);
    m = WarpMax(m);
    float l = 0.0f;
    for (int j = lane; j < n; j += 32) {
      const float p = expf(sc[g * kPartition + j] - m);
      sc[g * kPartition + j] = p;
      l += p;
    }
    l = WarpSum(l);
    if (lane == 0) m_s[g] = m, l_s[g] = l;
  }
  __syncthreads();

  const int slot_id = threadIdx.x / tg, vi = threadIdx.x % tg;
  if (slot_id < n_slots) {
    float acc[kMaxGroup][VEC];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
#pragma unroll
      for (int e = 0; e < VEC; ++e) acc[g][e] = 0.0f;
    // Four V rows per thread per pass, loaded before any is used (loads in flight).
    constexpr int kV = 4;
    for (int j0 = slot_id; j0 < n; j0 += kV * n_slots) {
      float vv[kV][VEC];
#pragma unroll
      for (int u = 0; u < kV; ++u) {
        const int j = j0 + u * n_slots;
        if (j < n) {
          const int tok = lo + j;
          const int64_t slot =
              (int64_t)table[tok / a.block_size] * a.block_size + tok % a.block_size;
          LoadVec<KvT, VEC>(vp + slot * token_stride + vi * VEC, vv[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < kV; ++u) {
        const int j = j0 + u * n_slots;
        if (j < n) {
#pragma unroll
          for (int g = 0; g < kMaxGroup; ++g) {
            if (g < ng) {
              const float p = sc[g * kPartition + j];
#pragma unroll
              for (int e = 0; e < VEC; ++e) acc[g][e] += p * vv[u][e];
            }
          }
        }
      }
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
      if (g < ng)
#pragma unroll
        for (int e = 0; e < VEC; ++e) red[(slot_id * ng + g) * hd + vi * VEC + e] = acc[g][e];
  }
  __syncthreads();

  for (int i = threadIdx.x; i < ng * hd; i += kThreads) {
    const int g = i / hd, d = i % hd;
    float o = 0.0f;
    for (int sl = 0; sl < n_slots; ++sl) o += red[(sl * ng + g) * hd + d];
    o /= l_s[g];
    const int h = g0 + g;
    // The row's window inside one partition (short contexts): final result, no merge needed.
    if (a.n_parts == 1 || rr.start / kPartition == rr.pos / kPartition) {
      a.out[q_row + (int64_t)h * hd + d] = o;
    } else {
      const int64_t pi = ((int64_t)t * a.n_heads + h) * a.n_parts + part;
      a.part_out[pi * hd + d] = o;
      if (d == 0) a.part_ml[2 * pi] = m_s[g], a.part_ml[2 * pi + 1] = l_s[g];
    }
  }
}

// Grid (T, n_heads), threads over head_dim: merges the valid partitions of one row and head with
// the online-softmax rescaling: out = sum_p o_p l_p e^(m_p - M) / sum_p l_p e^(m_p - M).
__global__ void MergePartitionsKernel(PagedAttentionArgs a) {
  PdlLaunchDependents();
  PdlWait();
  const int t = blockIdx.x, h = blockIdx.y, hd = a.head_dim;
  const RowRange rr = RowOf(a, t);
  if (rr.start / kPartition == rr.pos / kPartition) return;  // written by its only partition
  const int64_t base = ((int64_t)t * a.n_heads + h) * a.n_parts;
  auto valid = [&](int p) {
    return max(rr.start, p * kPartition) < min(rr.pos + 1, (p + 1) * kPartition);
  };
  float m = -FLT_MAX;
  for (int p = 0; p < a.n_parts; ++p)
    if (valid(p)) m = fmaxf(m, a.part_ml[2 * (base + p)]);
  float l = 0.0f;
  for (int p = 0; p < a.n_parts; ++p)
    if (valid(p)) l += a.part_ml[2 * (base + p) + 1] * expf(a.part_ml[2 * (base + p)] - m);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.0f;
    for (int p = 0; p < a.n_parts; ++p) {
      if (!valid(p)) continue;
      const float w = a.part_ml[2 * (base + p) + 1] * expf(a.part_ml[2 * (base + p)] - m);
      o += a.part_out[(base + p) * hd + d] * w;
    }
    a.out[((int64_t)t * a.n_heads + h) * hd + d] = o / l;
  }
}

size_t SmemBytes(const PagedAttentionArgs& a, int vec) {
  const int n_slots = kThreads / (a.head_dim / vec);
  return sizeof(float) *
         ((size_t)kMaxGroup * a.head_dim + (size_t)kMaxGroup * kPartition +
          (size_t)n_slots * kMaxGroup * a.head_dim);
}

template <typename KvT, int VEC>
void Launch(const PagedAttentionArgs& a, cudaStream_t stream) {
  const int group = a.n_heads / a.n_kv_heads;
  const int chunks = (group + kMaxGroup - 1) / kMaxGroup;
  const dim3 grid(a.n_rows, a.n_kv_heads * chunks, a.n_parts);
  LaunchPdl(PagedAttentionKernel<KvT, VEC>, grid, kThreads, SmemBytes(a, VEC), stream, a);
}

template <typename KvT>
void ConfigureFor() {
  CUDA_CHECK(cudaFuncSetAttribute(PagedAttentionKernel<KvT, 8>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmem));
  CUDA_CHECK(cudaFuncSetAttribute(PagedAttentionKernel<KvT, 1>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmem));
}

}  // namespace

void ConfigurePagedAttention() {
  ConfigureFor<float>();
  ConfigureFor<__nv_bfloat16>();
  ConfigureFor<__half>();
}

void LaunchPagedAttention(const PagedAttentionArgs& a, cudaStream_t stream) {
  if (a.n_rows == 0) return;
  const bool vec8 = a.head_dim % 8 == 0;
  // One V row must fit the block's threads (head_dim / VEC <= kThreads).
  CUDA_CHECK(a.head_dim / (vec8 ? 8 : 1) <= kThreads ? cudaSuccess : cudaErrorInvalidConfiguration);
  CUDA_CHECK(SmemBytes(a, vec8 ? 8 : 1) <= (size_t)kMaxSmem ? cudaSuccess
                                                             : cudaErrorInvalidConfiguration);
  DispatchElem(a.kv_elem, [&](auto tag_) {
    using KvT = ElemType<decltype(tag_)>;
    if (vec8) Launch<KvT, 8>(a, stream);
    else Launch<KvT, 1>(a, stream);
  });
  if (a.n_parts > 1) {
    LaunchPdl(MergePartitionsKernel, dim3(a.n_rows, a.n_heads), 128, 0, stream, a);
  }
}

}  // namespace petrel::kernels::cuda
