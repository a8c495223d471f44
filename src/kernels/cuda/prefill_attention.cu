#include "kernels/cuda/prefill_attention.cuh"

#include <algorithm>
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kv_tile.cuh"

namespace petrel::kernels::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kRows = 64;      // virtual rows (query row x head) per block
constexpr int kBn = 64;        // cached tokens per K/V tile
constexpr int kMaxGroup = 8;   // query heads per block; larger GQA groups take several blocks
constexpr int kMaxDim = 128;
constexpr int kMaxSmem = 160 * 1024;

int GroupMax(const PagedAttentionArgs& a) { return std::min(a.n_heads / a.n_kv_heads, kMaxGroup); }

size_t SmemBytes(const PagedAttentionArgs& a, int kv_size) {
  const int piece = 16 / kv_size;
  return sizeof(float) * (size_t)kRows * (a.head_dim + 4) +           // q
         (size_t)2 * kBn * (a.head_dim + piece) * kv_size +             // K, V tile
         sizeof(float) * (size_t)kRows * (kBn + 1);                     // P
}

// Grid (query tiles of all sequences, n_kv_heads * head chunks), kThreads threads. Virtual row v
// of a block is query head g0 + v / rows_per_tile of row r0 + v % rows_per_tile. Thread
// (ty = tid / 8, tx = tid % 8) owns virtual rows 4 ty .. 4 ty + 3: their scores against tile
// columns tx + 8 c (c < 8; consecutive threads read consecutive K rows, no bank conflicts) and
// their outputs on the 16-byte pieces tx + 8 q of head_dim.
template <typename KvT>
__global__ void __launch_bounds__(kThreads) PrefillAttentionKernel(PagedAttentionArgs a, int rpt) {
  PdlLaunchDependents();
  PdlWait();
  constexpr int kPiece = 16 / sizeof(KvT);
  constexpr int kOPieces = 64 / (4 * kPiece);  // 16-byte pieces of O per thread (hd <= 128)
  // This block's sequence and tile (the tiles of sequence s follow those of s - 1).
  int s = 0, tile = blockIdx.x;
  for (; s < a.n_seqs; ++s) {
    const int n = (a.seq_info[3 * s + 1] + rpt - 1) / rpt;
    if (tile < n) break;
    tile -= n;
  }
  if (s >= a.n_seqs) return;
  const int q_begin = a.seq_info[3 * s], q_len = a.seq_info[3 * s + 1];
  const int ctx = a.seq_info[3 * s + 2];
  const int r0 = q_begin + tile * rpt;          // first row of the tile
  const int m = min(rpt, q_begin + q_len - r0);  // rows in the tile
  const int pos0 = ctx - q_len + (r0 - q_begin);
  const int hd = a.head_dim, ppr = hd / kPiece;
  const int group = a.n_heads / a.n_kv_heads;
  const int chunks = (group + kMaxGroup - 1) / kMaxGroup;
  const int kvh = blockIdx.y / chunks;
  const int g0 = kvh * group + (blockIdx.y % chunks) * kMaxGroup;
  const int ng = min(kMaxGroup, kvh * group + group - g0);
  const int32_t* table = a.block_tables + (int64_t)s * a.table_stride;
  const int64_t token_stride = (int64_t)a.n_kv_heads * hd;
  const KvT* kb = static_cast<const KvT*>(a.k_pool) + (int64_t)kvh * hd;
  const KvT* vb = static_cast<const KvT*>(a.v_pool) + (int64_t)kvh * hd;
  // Cached tokens any row of the tile attends: [lo, hi).
  const int lo = a.sliding_window > 0 ? max(0, pos0 - a.sliding_window + 1) : 0;
  const int hi = pos0 + m;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int qs_stride = hd + 4, rs = hd + kPiece;
  float* qs = reinterpret_cast<float*>(smem_raw);                  // [kRows][hd + 4]
  KvT* ks = reinterpret_cast<KvT*>(qs + kRows * qs_stride);         // [kBn][rs]
  KvT* vs = ks + kBn * rs;                                          // [kBn][rs]
  float* ps = reinterpret_cast<float*>(vs + kBn * rs);              // [kRows][kBn + 1]

  // q (times scale) of the valid virtual rows, zero elsewhere.
  for (int i = threadIdx.x; i < kRows * hd; i += kThreads) {
    const int v = i / hd, d = i % hd;
    const int g = v / rpt, rr = v % rpt;
    float val = 0.0f;
    if (g < ng && rr < m) val = a.q[((int64_t)(r0 + rr) * a.n_heads + g0 + g) * hd + d] * a.scale;
    qs[v * qs_stride + d] = val;
  }

  const int ty = threadIdx.x / 8, tx = threadIdx.x % 8;
  int row_pos[4], row_start[4];
  bool row_ok[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int v = ty * 4 + i, g = v / rpt, rr = v % rpt;
    row_ok[i] = g < ng && rr < m && v < rpt * kMaxGroup;
    row_pos[i] = pos0 + rr;
    row_start[i] = a.sliding_window > 0 ? max(0, row_pos[i] - a.sliding_window + 1) : 0;
  }
  float o[4][kOPieces][kPiece];
  float row_m[4], row_l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    row_m[i] = -FLT_MAX, row_l[i] = 0.0f;
#pragma unroll
    for (int q = 0; q < kOPieces; ++q)
#pragma unroll
      for (int e = 0; e < kPiece; ++e) o[i][q][e] = 0.0f;
  }

  for (int t0 = lo; t0 < hi; t0 += kBn) {
    const int n = min(kBn, hi - t0);
    __syncthreads();  // the previous tile's K, V and P are no longer read
    for (int i = threadIdx.x; i < n * ppr; i += kThreads) {
      const int j = i / ppr, c = i % ppr;
      const int tok = t0 + j;
      const int64_t slot = (int64_t)table[tok / a.block_size] * a.block_size + tok % a.block_size;
      const int64_t off = slot * token_stride + c * kPiece;
      CpAsync16(ks + j * rs + c * kPiece, kb + off);
      CpAsync16(vs + j * rs + c * kPiece, vb + off);
    }
    CpAsyncCommit();
    CpAsyncWaitAll();
    __syncthreads();

    // Scores of 4 rows x 8 columns.
    float acc[4][8];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int c = 0; c < 8; ++c) acc[i][c] = 0.0f;
    for (int p = 0; p < ppr; ++p) {
      float qv[4][kPiece];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int e = 0; e < kPiece; e += 4) {
          const float4 q4 =
              *reinterpret_cast<const float4*>(qs + (ty * 4 + i) * qs_stride + p * kPiece + e);
          qv[i][e] = q4.x, qv[i][e + 1] = q4.y, qv[i][e + 2] = q4.z, qv[i][e + 3] = q4.w;
        }
#pragma unroll
      for (int c = 0; c < 8; ++c) {
        const int j = tx + 8 * c;
        if (j < n) {
          float kv[kPiece];
          LoadPiece<KvT>(ks + j * rs + p * kPiece, kv);
#pragma unroll
          for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int e = 0; e < kPiece; ++e) acc[i][c] += qv[i][e] * kv[e];
        }
      }
    }
    // Online softmax: mask, new running max (across the 8 threads of the row), rescale.
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float mx = -FLT_MAX;
#pragma unroll
      for (int c = 0; c < 8; ++c) {
        const int tok = t0 + tx + 8 * c;
        const bool ok = row_ok[i] && tx + 8 * c < n && tok <= row_pos[i] && tok >= row_start[i];
        acc[i][c] = ok ? acc[i][c] : -INFINITY;
        mx = fmaxf(mx, acc[i][c]);
      }
#pragma unroll
      for (int off = 1; off < 8; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_new = fmaxf(row_m[i], mx);
      const float scale = expf(row_m[i] - m_new);
      float sum = 0.0f;
#pragma unroll
      for (int c = 0; c < 8; ++c) {
        const float pv = expf(acc[i][c] - m_new);  // exp(-inf) = 0 for masked entries
        sum += pv;
        if (tx + 8 * c < kBn) ps[(ty * 4 + i) * (kBn + 1) + tx + 8 * c] = pv;
      }
#pragma unroll
      for (int off = 1; off < 8; off <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      row_l[i] = row_l[i] * scale + sum;
      row_m[i] = m_new;
#pragma unroll
      for (int q = 0; q < kOPieces; ++q)
#pragma unroll
        for (int e = 0; e < kPiece; ++e) o[i][q][e] *= scale;
    }
    __syncthreads();
    // O += P V over the tile's tokens.
    for (int j = 0; j < n; ++j) {
      float pj[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) pj[i] = ps[(ty * 4 + i) * (kBn + 1) + j];
#pragma unroll
      for (int q = 0; q < kOPieces; ++q) {
        const int pc = tx + 8 * q;
        if (pc < ppr) {
          float vv[kPiece];
          LoadPiece<KvT>(vs + j * rs + pc * kPiece, vv);
#pragma unroll
          for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int e = 0; e < kPiece; ++e) o[i][q][e] += pj[i] * vv[e];
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (!row_ok[i]) continue;
    const int v = ty * 4 + i, g = v / rpt, rr = v % rpt;
    float* out = a.out + ((int64_t)(r0 + rr) * a.n_heads + g0 + g) * hd;
    const float inv = 1.0f / row_l[i];
#pragma unroll
    for (int q = 0; q < kOPieces; ++q) {
      const int pc = tx + 8 * q;
      if (pc < ppr)
#pragma unroll
        for (int e = 0; e < kPiece; ++e) out[pc * kPiece + e] = o[i][q][e] * inv;
    }
  }
}

}  // namespace

int PrefillTileRows(const PagedAttentionArgs& a) { return kRows / GroupMax(a); }

bool PrefillAttentionSupported(const PagedAttentionArgs& a) {
  const int kv_size = a.kv_elem == Elem::kF32 ? 4 : 2;
  return a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0 && a.head_dim > 0 &&
         a.head_dim % (16 / kv_size) == 0 && a.head_dim <= kMaxDim && a.n_seqs > 0 &&
         SmemBytes(a, kv_size) <= (size_t)kMaxSmem;
}

void ConfigurePrefillAttention() {
  CUDA_CHECK(cudaFuncSetAttribute(PrefillAttentionKernel<float>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmem));
  CUDA_CHECK(cudaFuncSetAttribute(PrefillAttentionKernel<__nv_bfloat16>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmem));
  CUDA_CHECK(cudaFuncSetAttribute(PrefillAttentionKernel<__half>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmem));
}

void LaunchPrefillAttention(const PagedAttentionArgs& a, int n_tiles, cudaStream_t stream) {
  if (n_tiles == 0) return;
  CUDA_CHECK(PrefillAttentionSupported(a) ? cudaSuccess : cudaErrorInvalidConfiguration);
  const int group = a.n_heads / a.n_kv_heads;
  const int chunks = (group + kMaxGroup - 1) / kMaxGroup;
  const dim3 grid(n_tiles, a.n_kv_heads * chunks);
  DispatchElem(a.kv_elem, [&](auto tag_) {
    using KvT = ElemType<decltype(tag_)>;
    LaunchPdl(PrefillAttentionKernel<KvT>, grid, kThreads, SmemBytes(a, sizeof(KvT)), stream, a,
              PrefillTileRows(a));
  });
}

}  // namespace petrel::kernels::cuda
