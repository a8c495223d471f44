#include "kernels/cuda/matmul.cuh"

#include <algorithm>
#include <cstdlib>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/trace.cuh"

namespace petrel::kernels::cuda {

namespace {

constexpr int kGemvWarps = 8;  // output rows per block: one warp per row

template <typename W>
__device__ __forceinline__ void Load8(const W* p, float (&v)[8]) {
  if constexpr (sizeof(W) == 2) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
    const W* e = reinterpret_cast<const W*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = ToF32(e[i]);
  } else {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p));
    const float4 b = __ldg(reinterpret_cast<const float4*>(p + 4));
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  }
}

// One warp per output column n: lanes walk the weight row in 8-element (16-byte for 16-bit
// types) pieces, 256 elements per warp step, unrolled so several loads are in flight; each piece
// is used for all T activation rows (x stays in L1/L2: it is tiny next to the weights). A shuffle
// reduction per row, then bias. `vec` = K % 8 == 0 and 16-byte aligned rows; else one element
// per lane per step.
template <typename W, int TMAX>
__global__ void __launch_bounds__(kGemvWarps * 32)
    GemvKernel(float* __restrict__ out, const float* __restrict__ x, const W* __restrict__ w,
               const float* __restrict__ bias, int T, int64_t K, int64_t N, bool vec) {
  PdlLaunchDependents();
  PdlWait();
  const int64_t n = (int64_t)blockIdx.x * kGemvWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (n >= N) return;
  const W* wr = w + n * K;
  float acc[TMAX];
#pragma unroll
  for (int t = 0; t < TMAX; ++t) acc[t] = 0.0f;
  if (vec) {
#pragma unroll 4
    for (int64_t k = lane * 8; k < K; k += 256) {
      float wv[8];
      Load8(wr + k, wv);
#pragma unroll
      for (int t = 0; t < TMAX; ++t) {
        if (t < T) {
          const float4 a = *reinterpret_cast<const float4*>(x + t * K + k);
          const float4 b = *reinterpret_cast<const float4*>(x + t * K + k + 4);
          acc[t] += a.x * wv[0] + a.y * wv[1] + a.z * wv[2] + a.w * wv[3] + b.x * wv[4] +
                    b.y * wv[5] + b.z * wv[6] + b.w * wv[7];
        }
      }
    }
  } else {
    for (int64_t k = lane; k < K; k += 32) {
      const float wv = ToF32(wr[k]);
#pragma unroll
      for (int t = 0; t < TMAX; ++t)
        if (t < T) acc[t] += x[t * K + k] * wv;
    }
  }
#pragma unroll
  for (int t = 0; t < TMAX; ++t) {
    if (t < T) {
      const float s = WarpSum(acc[t]);
      if (lane == 0) out[t * N + n] = s + (bias ? bias[n] : 0.0f);
    }
  }
}

// Bandwidth-bound GEMV for T <= 8 rows over up to kMaxGemvSegs weight matrices that share x
// (q/k/v, gate/up: the backend groups consecutive MatMuls on the same activations). A warp owns
// kRowsPerWarp output columns (rows of W, a "pair") and one of KS slices of K; each lane streams
// 8-element (16-byte for 16-bit weights) pieces, and all kUnroll x kRowsPerWarp pieces of one
// pass are loaded into registers before any is used, so a lane has 8 independent 16-byte loads
// in flight (Little's law: ~20 KB in flight per SM is needed to approach HBM bandwidth).
// Warp shuffles, then a shared-memory sum over the KS slices. Needs K % 8 == 0 and 16-byte
// aligned x and w rows; the old one-warp-per-row kernel covers the rest.
//
// Persistent grid: a block walks "items" (kGroups pairs x KS slices) with a stride of the grid,
// which is at most what fits on the device at once, so a large matrix (the LM head: 9,500 items)
// keeps every SM streaming instead of paying a block launch per 16 rows.
//
// PDL: the first pass of weight pieces is loaded before PdlWait(), i.e. while the kernel before
// (which produced x) may still be running; x and every output are touched only after it.
//
// Prologue (GemvGroup::norm_x): the RMSNorm of the rows that feed the GEMVs (the attention and
// MLP input norms) is computed by every block after the wait: squares of norm_x summed per row
// in f32 (thread-strided, shuffles, one shared-memory pass), and each piece of x is formed as
// w * (x * inv) as the RmsNorm kernel does; block 0 stores the normalised rows in x, the norm's
// output. norm_x is only read, so no block can see another's write.
//
// Epilogues (GemvGroup): plain (out = x.w^T + bias); `residual` (one segment: residual += out as
// well, the residual add that follows o_proj / down_proj); `silu_out` (two segments of equal n,
// gate then up: the warp's two rows are gate row p and up row p, and silu_out = silu(gate) * up
// is written besides gate and up); `amax` (one segment: the first index of the largest value of
// each row t, reduced per block and merged with 64-bit atomicMax on an order-preserving key; the
// last block to finish writes amax_ids and resets the keys and the counter for the next launch).
constexpr int kRowsPerWarp = 2;
constexpr int kUnroll = 4;

template <typename W>
struct Piece;  // 8 raw weight elements
template <>
struct Piece<float> {
  float4 a, b;
};
template <typename W>
struct Piece {
  uint4 a;
};

template <typename W>
__device__ __forceinline__ Piece<W> LoadPiece(const W* p) {
  Piece<W> r;
  if constexpr (sizeof(W) == 4) {
    r.a = __ldg(reinterpret_cast<const float4*>(p));
    r.b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  } else {
    r.a = __ldg(reinterpret_cast<const uint4*>(p));
  }
  return r;
}
template <typename W>
__device__ __forceinline__ void Unpack(const Piece<W>& r, float (&v)[8]) {
  if constexpr (sizeof(W) == 4) {
    v[0] = r.a.x, v[1] = r.a.y, v[2] = r.a.z, v[3] = r.a.w;
    v[4] = r.b.x, v[5] = r.b.y, v[6] = r.b.z, v[7] = r.b.w;
  } else {
    const W* e = reinterpret_cast<const W*>(&r.a);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = ToF32(e[i]);
  }
}

// Row `n` of the launch's numbering: its segment and the row inside it (seg -1 past the end).
__device__ __forceinline__ int SegOf(const GemvGroup& g, int64_t n, int64_t& c) {
#pragma unroll
  for (int sg = 0; sg < kMaxGemvSegs; ++sg) {
    if (sg < g.n_segs && n >= g.seg[sg].begin && n < g.seg[sg].begin + g.seg[sg].n) {
      c = n - g.seg[sg].begin;
      return sg;
    }
  }
  return -1;
}

// Order-preserving 64-bit key of (value, index): larger value first, then smaller index. NaN
// gets key 0 (never wins; a row of NaN only reads as index 0, like the ArgMax kernel).
__device__ __forceinline__ unsigned long long AmaxKey(float v, int64_t idx) {
  if (v != v) return 0ull;
  unsigned u = __float_as_uint(v);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return ((unsigned long long)u << 32) | (unsigned long long)(0xFFFFFFFFu - (unsigned)idx);
}

// At least 4 blocks per SM for one row of 16-bit weights (<= 64 registers; ptxas spills 16
// bytes): single-stream decode grids (<= 528 blocks) then run in one wave, where a second wave of
// the persistent grid would cost a whole extra memory latency. Otherwise 2 (no spills).
// kPipe (grids that loop over many items, e.g. the LM head): each block issues its next item's
// first pass as soon as the current one's FMAs have read theirs, so that the loads overlap the
// reductions, barriers and stores; 3 blocks per SM leave the registers for it (the one-item
// grids of the layers keep the variant without: in it the extra registers spilled, -5% end to
// end).
template <typename W, int TMAX, int KS, bool kPipe>
__global__ void __launch_bounds__(256, kPipe ? 3 : (TMAX == 1 && sizeof(W) == 2) ? 4 : 2)
    GemvStreamKernel(GemvGroup g, const float* x, int T, int64_t K, int64_t n_pairs) {
  constexpr int kWarps = 8, kGroups = kWarps / KS;  // pairs per item
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int grp = warp / KS, ks = warp % KS;
  const bool silu = g.silu_out != nullptr;
  const int64_t n_items = (n_pairs + kGroups - 1) / kGroups;
  constexpr int kStep = 256 * KS;  // elements of K one pass of the KS warps covers per piece
  const int64_t k0 = (int64_t)ks * 256 + lane * 8;

  // This warp's weight rows for pair `pair` (nullptr past the end).
  auto rows_of = [&](int64_t pair, const W* (&wr)[kRowsPerWarp]) {
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      wr[r] = nullptr;
      int64_t c = 0;
      const int sg = silu ? (pair < g.seg[0].n ? r : -1) : SegOf(g, pair * kRowsPerWarp + r, c);
      if (silu) c = pair;
      if (sg >= 0) wr[r] = static_cast<const W*>(g.seg[sg].w) + c * K;
    }
  };
  auto load_pass = [&](const W* const (&wr)[kRowsPerWarp], int64_t base,
                       Piece<W> (&p)[kRowsPerWarp][kUnroll]) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r)
        if (wr[r] && base + u * kStep < K) p[r][u] = LoadPiece(wr[r] + base + u * kStep);
  };

  PETREL_TRACE_ENTRY();
  Piece<W> p[kRowsPerWarp][kUnroll];
  int64_t item = blockIdx.x;
  float* const x_out = const_cast<float*>(x);  // the norm's output (prologue)
  if (g.norm_x) x = g.norm_x;
  {
    const W* wr[kRowsPerWarp];
    rows_of(item * kGroups + grp, wr);
    if (item < n_items && k0 < K) load_pass(wr, k0, p);  // before the wait: weights only
  }
  PdlLaunchDependents();
  PdlWait();
  PETREL_TRACE_WAITED();

  __shared__ float red[kWarps][kRowsPerWarp][TMAX];
  __shared__ float inv_s[TMAX];
  if (g.norm_x) {
    float ss[TMAX];
#pragma unroll
    for (int t = 0; t < TMAX; ++t) ss[t] = 0.0f;
    // kNormLoads strided elements per row are loaded before any is summed (one L2 round trip
    // per kNormLoads * 256 elements instead of one per 256; the sum's order is unchanged).
    constexpr int kNormLoads = 4;
    for (int64_t k0 = threadIdx.x; k0 < K; k0 += (int64_t)kNormLoads * blockDim.x) {
      float v[kNormLoads][TMAX];
#pragma unroll
      for (int u = 0; u < kNormLoads; ++u) {
        const int64_t k = k0 + (int64_t)u * blockDim.x;
#pragma unroll
        for (int t = 0; t < TMAX; ++t) v[u][t] = k < K && t < T ? x[t * K + k] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kNormLoads; ++u)
#pragma unroll
        for (int t = 0; t < TMAX; ++t)
          if (t < T && k0 + (int64_t)u * blockDim.x < K) ss[t] += v[u][t] * v[u][t];
    }
#pragma unroll
    for (int t = 0; t < TMAX; ++t) {
      const float v = WarpSum(ss[t]);
      if (lane == 0) red[warp][0][t] = v;
    }
    __syncthreads();
    if (threadIdx.x < T) {
      float tot = 0.0f;
      for (int w = 0; w < kWarps; ++w) tot += red[w][0][threadIdx.x];
      inv_s[threadIdx.x] = 1.0f / sqrtf(tot / (float)K + g.norm_eps);
    }
    __syncthreads();
    if (blockIdx.x == 0)
      for (int64_t i = threadIdx.x; i < T * K; i += blockDim.x)
        x_out[i] = g.norm_w[i % K] * (x[i] * inv_s[i / K]);
  }
  PETREL_TRACE_MARK(0);
  unsigned long long best[TMAX];
#pragma unroll
  for (int t = 0; t < TMAX; ++t) best[t] = 0ull;
  bool preloaded = true;
  for (; item < n_items; item += gridDim.x) {
    const int64_t pair0 = item * kGroups;
    const W* wr[kRowsPerWarp];
    rows_of(pair0 + grp, wr);
    float acc[kRowsPerWarp][TMAX];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
      for (int t = 0; t < TMAX; ++t) acc[r][t] = 0.0f;
    for (int64_t base = k0; base < K; base += (int64_t)kUnroll * kStep) {
      if (!preloaded) load_pass(wr, base, p);
      preloaded = false;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t k = base + u * kStep;
        if (k < K) {
          float4 na = {1.0f, 1.0f, 1.0f, 1.0f}, nb = na;  // norm weights of this piece
          if (g.norm_x) {
            na = *reinterpret_cast<const float4*>(g.norm_w + k);
            nb = *reinterpret_cast<const float4*>(g.norm_w + k + 4);
          }
#pragma unroll
          for (int t = 0; t < TMAX; ++t) {
            if (t < T) {
              float4 a = *reinterpret_cast<const float4*>(x + t * K + k);
              float4 b = *reinterpret_cast<const float4*>(x + t * K + k + 4);
              if (g.norm_x) {
                const float inv = inv_s[t];
                a.x = na.x * (a.x * inv), a.y = na.y * (a.y * inv);
                a.z = na.z * (a.z * inv), a.w = na.w * (a.w * inv);
                b.x = nb.x * (b.x * inv), b.y = nb.y * (b.y * inv);
                b.z = nb.z * (b.z * inv), b.w = nb.w * (b.w * inv);
              }
#pragma unroll
              for (int r = 0; r < kRowsPerWarp; ++r) {
                if (wr[r]) {
                  float wv[8];
                  Unpack(p[r][u], wv);
                  acc[r][t] += a.x * wv[0] + a.y * wv[1] + a.z * wv[2] + a.w * wv[3] +
                               b.x * wv[4] + b.y * wv[5] + b.z * wv[6] + b.w * wv[7];
                }
              }
            }
          }
        }
      }
    }
    preloaded = false;
    if constexpr (kPipe) {
      if (item + gridDim.x < n_items) {
        const W* wn[kRowsPerWarp];
        rows_of((item + gridDim.x) * kGroups + grp, wn);
        if (k0 < K) load_pass(wn, k0, p);
        preloaded = true;
      }
    }
    PETREL_TRACE_MARK(1);
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
      for (int t = 0; t < TMAX; ++t) {
        const float s = WarpSum(acc[r][t]);
        if (lane == 0) red[warp][r][t] = s;
      }
    __syncthreads();
    PETREL_TRACE_MARK(2);
    if (silu) {
      for (int i = threadIdx.x; i < kGroups * TMAX; i += blockDim.x) {
        const int t = i % TMAX, gi = i / TMAX;
        const int64_t c = pair0 + gi;
        if (t >= T || c >= g.seg[0].n) continue;
        float gs = 0.0f, us = 0.0f;
        for (int j = 0; j < KS; ++j) gs += red[gi * KS + j][0][t], us += red[gi * KS + j][1][t];
        const int64_t n = g.seg[0].n;
        if (g.seg[0].bias) gs += g.seg[0].bias[c];
        if (g.seg[1].bias) us += g.seg[1].bias[c];
        g.seg[0].out[t * n + c] = gs;
        g.seg[1].out[t * n + c] = us;
        // silu(g) = g / (1 + exp(-g)), as the SiluMul kernel (written last: it may alias gate/up).
        g.silu_out[t * n + c] = gs / (1.0f + expf(-gs)) * us;
      }
    } else {
      for (int i = threadIdx.x; i < kGroups * kRowsPerWarp * TMAX; i += blockDim.x) {
        const int t = i % TMAX, r = (i / TMAX) % kRowsPerWarp, gi = i / (TMAX * kRowsPerWarp);
        int64_t c = 0;
        const int sg = SegOf(g, (pair0 + gi) * kRowsPerWarp + r, c);
        if (t >= T || sg < 0) continue;
        float s = 0.0f;
        for (int j = 0; j < KS; ++j) s += red[gi * KS + j][r][t];
        const float* bias = g.seg[sg].bias;
        s += bias ? bias[c] : 0.0f;
        const int64_t n = g.seg[sg].n;
        g.seg[sg].out[t * n + c] = s;
        if (g.residual) g.residual[t * n + c] += s;
        if (g.amax) {
#pragma unroll
          for (int tt = 0; tt < TMAX; ++tt)
            if (tt == t) best[tt] = max(best[tt], AmaxKey(s, c));
        }
      }
    }
    __syncthreads();  // red is reused by the next item
    PETREL_TRACE_MARK(3);
  }

  if (g.amax) {
    // Block maximum per row t, one atomic per block and row; the last block decodes.
    __shared__ unsigned long long bred[kWarps];
    __shared__ bool last;
    for (int t = 0; t < T; ++t) {
      unsigned long long v = 0ull;
#pragma unroll
      for (int tt = 0; tt < TMAX; ++tt)
        if (tt == t) v = best[tt];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
      if (lane == 0) bred[warp] = v;
      __syncthreads();
      if (threadIdx.x == 0) {
        for (int w = 1; w < kWarps; ++w) v = max(v, bred[w]);
        v = max(v, bred[0]);
        if (v) atomicMax(g.amax + t, v);
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      __threadfence();
      last = atomicAdd(g.amax_counter, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (last && threadIdx.x < T) {
      __threadfence();
      const unsigned long long key = atomicExch(g.amax + threadIdx.x, 0ull);
      g.amax_ids[threadIdx.x] = key ? (int32_t)(0xFFFFFFFFu - (unsigned)(key & 0xFFFFFFFFull)) : 0;
      if (threadIdx.x == 0) *g.amax_counter = 0u;
    }
  }
  // Trace tag: K / 8 (11 bits) and the pair count (20 bits).
  PETREL_TRACE_EXIT((uint32_t)(((K / 8) & 0x7FF) << 20) | (uint32_t)(n_pairs & 0xFFFFF));
}

// Blocks of one GemvStreamKernel instantiation that fit on the device at once (computed once).
template <typename W, int TMAX, int KS, bool kPipe>
int64_t ResidentBlocks() {
  static const int64_t n = [] {
    int dev = 0, sms = 0, per_sm = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &per_sm, GemvStreamKernel<W, TMAX, KS, kPipe>, 256, 0));
    return (int64_t)sms * std::max(per_sm, 1);
  }();
  return n;
}

template <typename W, int TMAX, int KS, bool kPipe>
void LaunchStreamGrid(const GemvGroup& g, const float* x, int T, int64_t K, int64_t n_pairs,
                      int64_t items, cudaStream_t stream) {
  const unsigned blocks =
      (unsigned)std::max<int64_t>(1, std::min(items, ResidentBlocks<W, TMAX, KS, kPipe>()));
  LaunchPdl(GemvStreamKernel<W, TMAX, KS, kPipe>, blocks, 256, 0, stream, g, x, T, K, n_pairs);
}

template <typename W, int TMAX, int KS>
void LaunchStreamKs(const GemvGroup& g, const float* x, int T, int64_t K, int64_t n_pairs,
                    cudaStream_t stream) {
  constexpr int kGroups = 8 / KS;
  const int64_t items = (n_pairs + kGroups - 1) / kGroups;
  // The pipelined variant once every block loops over several items (PETREL_CUDA_GEMV_PIPE=0
  // turns it off, to measure it).
  static const bool pipe_on = [] {
    const char* v = std::getenv("PETREL_CUDA_GEMV_PIPE");
    return !(v && v[0] == '0');
  }();
  if constexpr (KS == 1 && TMAX <= 2 && sizeof(W) == 2)  // others spill with it (80 registers)
    if (pipe_on && items >= 4 * ResidentBlocks<W, TMAX, KS, true>())
      return LaunchStreamGrid<W, TMAX, KS, true>(g, x, T, K, n_pairs, items, stream);
  LaunchStreamGrid<W, TMAX, KS, false>(g, x, T, K, n_pairs, items, stream);
}

template <typename W, int TMAX>
void LaunchStream(const GemvGroup& g, const float* x, int T, int64_t K, cudaStream_t stream) {
  int64_t rows = 0;
  for (int i = 0; i < g.n_segs; ++i) rows += g.seg[i].n;
  const int64_t pairs = g.silu_out ? g.seg[0].n : (rows + kRowsPerWarp - 1) / kRowsPerWarp;
  // K slices per row: the fewest that give ~16 warps per SM (132 SMs), while every slice keeps at
  // least one 256-element piece per lane pass. PETREL_CUDA_GEMV_WARPS=n changes the 16 (tuning).
  static const int64_t warps_per_sm = [] {
    const char* v = std::getenv("PETREL_CUDA_GEMV_WARPS");
    const int n = v ? std::atoi(v) : 16;
    return (int64_t)(n >= 1 && n <= 64 ? n : 16);
  }();
  int ks = 1;
  while (ks < 8 && pairs * ks < 132 * warps_per_sm && K >= 256LL * ks * 2) ks *= 2;
  switch (ks) {
    case 1: LaunchStreamKs<W, TMAX, 1>(g, x, T, K, pairs, stream); break;
    case 2: LaunchStreamKs<W, TMAX, 2>(g, x, T, K, pairs, stream); break;
    case 4: LaunchStreamKs<W, TMAX, 4>(g, x, T, K, pairs, stream); break;
    default: LaunchStreamKs<W, TMAX, 8>(g, x, T, K, pairs, stream); break;
  }
}

template <typename W>
void LaunchGemv(const MatMulArgs& a, cudaStream_t stream) {
  const bool vec = a.K % 8 == 0 && (uintptr_t)a.x % 16 == 0 && (uintptr_t)a.w % 16 == 0;
  const W* w = static_cast<const W*>(a.w);
  const int T = (int)a.T;
  if (vec) {
    GemvGroup g;
    g.n_segs = 1;
    g.seg[0] = {a.out, a.w, a.bias, 0, a.N};
    if (T <= 1) LaunchStream<W, 1>(g, a.x, T, a.K, stream);
    else if (T <= 2) LaunchStream<W, 2>(g, a.x, T, a.K, stream);
    else if (T <= 4) LaunchStream<W, 4>(g, a.x, T, a.K, stream);
    else LaunchStream<W, 8>(g, a.x, T, a.K, stream);
    return;
  }
  const unsigned blocks = (unsigned)((a.N + kGemvWarps - 1) / kGemvWarps);
  // TMAX is the next power of two >= T, so the unrolled row loops stay short.
  const unsigned threads = kGemvWarps * 32;
  if (T <= 1) LaunchPdl(GemvKernel<W, 1>, blocks, threads, 0, stream, a.out, a.x, w, a.bias, T, a.K, a.N, vec);
  else if (T <= 2) LaunchPdl(GemvKernel<W, 2>, blocks, threads, 0, stream, a.out, a.x, w, a.bias, T, a.K, a.N, vec);
  else if (T <= 4) LaunchPdl(GemvKernel<W, 4>, blocks, threads, 0, stream, a.out, a.x, w, a.bias, T, a.K, a.N, vec);
  else LaunchPdl(GemvKernel<W, 8>, blocks, threads, 0, stream, a.out, a.x, w, a.bias, T, a.K, a.N, vec);
}

template <typename T16>
__global__ void RoundKernel(T16* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = FromF32<T16>(src[i]);
}

__global__ void BiasKernel(float* __restrict__ out, const float* __restrict__ bias, int64_t T,
                           int64_t N) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < T * N) out[i] += bias[i % N];
}

// Row-major out[T, N] = x[T, K] . w[N, K]^T is, in cuBLAS's column-major terms,
// out^T (N x T, ld N) = op_T(w as K x N, ld K) . x^T (K x T, ld K).
void CublasMatMul(const MatMulArgs& a, const void* x, cudaDataType_t ab_type,
                  cublasHandle_t cublas) {
  const float alpha = 1.0f, beta = 0.0f;
  CUDA_CHECK(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)a.N, (int)a.T, (int)a.K, &alpha,
                          a.w, ab_type, (int)a.K, x, ab_type, (int)a.K, &beta, a.out, CUDA_R_32F,
                          (int)a.N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

PETREL_TRACE_SETTER(SetGemvTrace)

bool GemvGroupable(const float* x, const void* w, int64_t T, int64_t K) {
  return T >= 1 && T <= kGemvMaxRows && K % 8 == 0 && (uintptr_t)x % 16 == 0 &&
         (uintptr_t)w % 16 == 0;
}

void LaunchGemvGroup(const GemvGroup& g, Elem w_elem, const float* x, int64_t T, int64_t K,
                     cudaStream_t stream) {
  DispatchElem(w_elem, [&](auto tag_) {
    using W = ElemType<decltype(tag_)>;
    if (T <= 1) LaunchStream<W, 1>(g, x, (int)T, K, stream);
    else if (T <= 2) LaunchStream<W, 2>(g, x, (int)T, K, stream);
    else if (T <= 4) LaunchStream<W, 4>(g, x, (int)T, K, stream);
    else LaunchStream<W, 8>(g, x, (int)T, K, stream);
  });
}

size_t MatMulScratchBytes(int64_t T, int64_t K, Elem w_elem) {
  if (T <= kGemvMaxRows || w_elem == Elem::kF32) return 0;
  return (size_t)T * K * 2;
}

void MatMul(const MatMulArgs& a, cublasHandle_t cublas, cudaStream_t stream) {
  if (a.T == 0 || a.N == 0) return;
  if (a.T <= kGemvMaxRows) {
    DispatchElem(a.w_elem, [&](auto tag_) { LaunchGemv<ElemType<decltype(tag_)>>(a, stream); });
    return;
  }
  const int64_t n_x = a.T * a.K;
  const unsigned round_blocks = (unsigned)((n_x + 255) / 256);
  switch (a.w_elem) {
    case Elem::kF32:
      CublasMatMul(a, a.x, CUDA_R_32F, cublas);
      break;
    case Elem::kBF16:
      RoundKernel<<<round_blocks, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(a.x16), a.x, n_x);
      CUDA_CHECK(cudaGetLastError());
      CublasMatMul(a, a.x16, CUDA_R_16BF, cublas);
      break;
    case Elem::kF16:
      RoundKernel<<<round_blocks, 256, 0, stream>>>(static_cast<__half*>(a.x16), a.x, n_x);
      CUDA_CHECK(cudaGetLastError());
      CublasMatMul(a, a.x16, CUDA_R_16F, cublas);
      break;
  }
  if (a.bias) {
    BiasKernel<<<(unsigned)((a.T * a.N + 255) / 256), 256, 0, stream>>>(a.out, a.bias, a.T, a.N);
    CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace petrel::kernels::cuda
