#include "kernels/cuda/decode_attention.cuh"

#include <algorithm>
#include <cfloat>
#include <cstdlib>
#include <cuda/atomic>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/head_ops_device.cuh"
#include "kernels/cuda/kv_tile.cuh"
#include "kernels/cuda/trace.cuh"

namespace petrel::kernels::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kMaxGroup = 8;  // query heads per block; larger GQA groups take several blocks
constexpr int kMaxSmem = 160 * 1024;
constexpr int kMaxHeadDim = 256;  // DecodeAttentionSupported
constexpr int kMergeRegs = 16;    // splits DecodeMergeKernel merges from registers

// Shared memory of one block, in bytes: K and V pieces [split][head_dim + one piece of padding]
// (the padding spreads consecutive rows over the banks), then f32 q [ng][hd], probabilities
// [ng][split], the P.V partial sums [slices][ng][hd] (also the new k's row while the head ops
// run) and, with the head ops only, the rotated, unscaled q [ng][hd] (written back at the end).
size_t SmemBytes(const PagedAttentionArgs& a, int split, int kv_size, bool heads) {
  const int piece = 16 / kv_size, ppr = a.head_dim / piece;
  const int ngm = std::min(a.n_heads / a.n_kv_heads, kMaxGroup);
  const int slices = kThreads / ppr;
  return (size_t)2 * split * (a.head_dim + piece) * kv_size +
         sizeof(float) * ((size_t)(heads ? 2 : 1) * ngm * a.head_dim + (size_t)ngm * split +
                          (size_t)slices * ngm * a.head_dim);
}

// Row t's sequence, position (its token's) and first attended position (sliding window), and the
// first position written in this step. Index arrays are uploaded before the step's kernels:
// readable before the PDL wait.
struct RowWindow {
  int seq, pos, start, first_new;
};
__device__ __forceinline__ RowWindow RowWindowOf(const PagedAttentionArgs& a, int t) {
  const int s = a.row_seq[t];
  const int q_begin = a.seq_info[3 * s], q_len = a.seq_info[3 * s + 1];
  const int first_new = a.seq_info[3 * s + 2] - q_len;
  const int pos = first_new + (t - q_begin);
  return {s, pos, a.sliding_window > 0 ? max(0, pos - a.sliding_window + 1) : 0, first_new};
}

// out = sum_p o_p l_p e^(m_p - M) / sum_p l_p e^(m_p - M) over splits p0..p1 of one output
// element: ml[p] = (m_p, l_p), po[p * hd] = o_p. A loop of dependent L2 reads (__ldcg: the
// partials of other blocks, never a stale L1 line); the fast paths keep this order of operations.
__device__ __forceinline__ float MergeSplitsLoop(const float2* ml, const float* po, int p0, int p1,
                                                 int hd) {
  float m = -FLT_MAX;
  for (int p = p0; p <= p1; ++p) m = fmaxf(m, __ldcg(ml + p).x);
  float l = 0.0f, o = 0.0f;
  for (int p = p0; p <= p1; ++p) {
    const float2 mlp = __ldcg(ml + p);
    const float w = mlp.y * expf(mlp.x - m);
    l += w;
    o += __ldcg(po + (int64_t)p * hd) * w;
  }
  return o / l;
}

// Grid (T, n_kv_heads * head_chunks, n_splits), kThreads threads.
// kHeads: the DecodeHeadOps variant (fh.on); a separate instantiation so that the plain kernel
// keeps its registers (104 against 91 when one kernel held both paths: fewer blocks per SM in
// large batches).
template <typename KvT, bool kHeads>
__global__ void __launch_bounds__(kThreads)
    DecodeAttentionKernel(PagedAttentionArgs a, int split, int n_splits, DecodeAttentionScratch sc,
                          bool prefetch, DecodeHeadOps fh) {
  PETREL_TRACE_ENTRY();
  PdlLaunchDependents();
  constexpr int kPiece = 16 / sizeof(KvT);  // elements per 16-byte piece
  const int t = blockIdx.x;
  const RowWindow rw = RowWindowOf(a, t);
  const int s = rw.seq, pos = rw.pos, start = rw.start;
  const int first_new = rw.first_new;  // tokens from here on are written in this step
  const int lo = max(start, (int)blockIdx.z * split);
  const int hi = min(pos + 1, ((int)blockIdx.z + 1) * split);
  if (lo >= hi) {  // nothing of this row's window in this split
    PdlWait();
    return;
  }
  const int n = hi - lo;
  const int hd = a.head_dim, ppr = hd / kPiece, rs = hd + kPiece;
  const int group = a.n_heads / a.n_kv_heads;
  const int ngm = min(group, kMaxGroup);
  const int chunks = (group + kMaxGroup - 1) / kMaxGroup;
  const int kvh = blockIdx.y / chunks;
  const int g0 = kvh * group + (blockIdx.y % chunks) * kMaxGroup;  // first query head
  const int ng = min(kMaxGroup, kvh * group + group - g0);
  const int32_t* table = a.block_tables + (int64_t)s * a.table_stride;
  const int64_t token_stride = (int64_t)a.n_kv_heads * hd;
  const KvT* kb = static_cast<const KvT*>(a.k_pool) + (int64_t)kvh * hd;
  const KvT* vb = static_cast<const KvT*>(a.v_pool) + (int64_t)kvh * hd;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  KvT* ks = reinterpret_cast<KvT*>(smem_raw);  // [split][rs]
  KvT* vs = ks + (int64_t)split * rs;          // [split][rs]
  float* qs = reinterpret_cast<float*>(vs + (int64_t)split * rs);  // [ngm][hd]
  float* ps = qs + ngm * hd;                                        // [ngm][split]
  float* red = ps + ngm * split;                                    // [slices][ngm][hd]
  float* qr = red + (kThreads / ppr) * ngm * hd;                    // [ngm][hd]
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup];
  __shared__ bool last;

  // K and V rows of the split into shared memory: the old tokens now (with `prefetch`), this
  // step's after the wait.
  auto copy_rows = [&](int from, int to) {
    for (int i = threadIdx.x; i < n * ppr; i += kThreads) {
      const int j = i / ppr, c = i % ppr;
      const int tok = lo + j;
      if (tok < from || tok >= to) continue;
      const int64_t slot = (int64_t)table[tok / a.block_size] * a.block_size + tok % a.block_size;
      const int64_t off = slot * token_stride + c * kPiece;
      CpAsync16(ks + j * rs + c * kPiece, kb + off);
      CpAsync16(vs + j * rs + c * kPiece, vb + off);
    }
    CpAsyncCommit();
  };
  if (prefetch) copy_rows(0, first_new);
  PdlWait();
  PETREL_TRACE_WAITED();
  // Trace tag: bit 31 (attention), 30 (the merging block), 29 (single split), the split count.
  [[maybe_unused]] const uint32_t trace_tag = 0x80000000u | (uint32_t)n_splits;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t q_row = (int64_t)t * a.n_heads * hd;
  if constexpr (!kHeads) {
    copy_rows(prefetch ? first_new : 0, hi);
    for (int i = threadIdx.x; i < ng * hd; i += kThreads)
      qs[i] = a.q[q_row + (int64_t)g0 * hd + i] * a.scale;
  } else {
    // The head ops (DecodeHeadOps; the row's token is position pos = first_new): a warp per
    // query head, and one for the new k when this split holds the token.
    if (!prefetch) copy_rows(0, first_new);
    const bool has_new = pos >= lo && pos < hi;
    const int half = hd / 2;
    const int64_t new_k = (int64_t)t * token_stride + (int64_t)kvh * hd;  // in fh.k / fh.v
    const int64_t new_slot = has_new ? fh.slots[t] * token_stride : 0;
    // All of this step's loads (the new v, each head's q or k with its norm weights, the RoPE
    // table) are issued before any is used: one L2 round trip. The timeline trace (trace.cuh)
    // measured the former strided loops (a round trip per 32 elements, the norm weights another)
    // and the per-block double-precision sincos at ~2.5 us a layer; the table (RopeTable, once
    // a step) leaves ~1.5 us. The norm is WarpNormHead's arithmetic in the same order
    // (bit-identical to the HeadOps kernel).
    constexpr int kQLoads = kMaxHeadDim / 32;
    constexpr int kVLoads = kMaxHeadDim / kThreads;
    float vnew[kVLoads];
#pragma unroll
    for (int u = 0; u < kVLoads; ++u) {
      const int i = threadIdx.x + u * kThreads;
      vnew[u] = has_new && i < hd ? fh.v[new_k + i] : 0.0f;
    }
    for (int item = warp; item < ng + (has_new ? 1 : 0); item += kThreads / 32) {
      const bool is_k = item == ng;
      float* sr = is_k ? red : qr + item * hd;
      const float* src = is_k ? fh.k + new_k : fh.q + q_row + (int64_t)(g0 + item) * hd;
      const float* nw = is_k ? fh.k_norm_w : fh.q_norm_w;
      float xv[kQLoads], wv[kQLoads];
#pragma unroll
      for (int u = 0; u < kQLoads; ++u) {
        const int i = lane + 32 * u;
        xv[u] = i < hd ? src[i] : 0.0f;
        wv[u] = nw && i < hd ? nw[i] : 0.0f;
      }
      constexpr int kCsLoads = kMaxHeadDim / 64;
      float2 cs[kCsLoads];  // RoPE (cos, sin) of the row's position: the step's table
#pragma unroll
      for (int u = 0; u < kCsLoads; ++u) {
        const int i = lane + 32 * u;
        cs[u] = i < half ? fh.rope_cs[(int64_t)t * half + i] : make_float2(0.0f, 0.0f);
      }
      float ss = 0.0f;
#pragma unroll
      for (int u = 0; u < kQLoads; ++u) ss += xv[u] * xv[u];
      if (nw) {
        // WarpNormHead's arithmetic: w * (x * inv).
        const float inv = WarpHeadNormInv(ss, hd, is_k ? fh.k_eps : fh.q_eps);
#pragma unroll
        for (int u = 0; u < kQLoads; ++u) xv[u] = wv[u] * (xv[u] * inv);
      }
#pragma unroll
      for (int u = 0; u < kQLoads; ++u)
        if (lane + 32 * u < hd) sr[lane + 32 * u] = xv[u];
      __syncwarp();
#pragma unroll
      for (int u = 0; u < kCsLoads; ++u) {
        const int i = lane + 32 * u;
        if (i >= half) continue;
        float r0, r1;
        RopeApply(cs[u].x, cs[u].y, sr[i], sr[i + half], r0, r1);
        if (is_k) {
          const KvT k0 = FromF32<KvT>(r0), k1 = FromF32<KvT>(r1);
          KvT* kr = ks + (pos - lo) * rs;
          KvT* kg = const_cast<KvT*>(kb) + new_slot;
          kr[i] = k0, kr[i + half] = k1;
          kg[i] = k0, kg[i + half] = k1;
          fh.k[new_k + i] = r0, fh.k[new_k + i + half] = r1;
        } else {
          sr[i] = r0, sr[i + half] = r1;
          qs[item * hd + i] = r0 * a.scale, qs[item * hd + i + half] = r1 * a.scale;
        }
      }
    }
    if (has_new) {
#pragma unroll
      for (int u = 0; u < kVLoads; ++u) {
        const int i = threadIdx.x + u * kThreads;
        if (i < hd) {
          const KvT v = FromF32<KvT>(vnew[u]);
          vs[(pos - lo) * rs + i] = v;
          const_cast<KvT*>(vb)[new_slot + i] = v;
        }
      }
    }
  }
  PETREL_TRACE_MARK(0);
  CpAsyncWaitAll();
  __syncthreads();
  PETREL_TRACE_MARK(1);

  // Scores: one (head, token) pair per thread, the K row read in 16-byte pieces.
  for (int i = threadIdx.x; i < ng * n; i += kThreads) {
    const int g = i / n, j = i % n;
    const KvT* kr = ks + j * rs;
    const float* qg = qs + g * hd;
    float acc = 0.0f;
    for (int c = 0; c < ppr; ++c) {
      float kv[kPiece];
      LoadPiece<KvT>(kr + c * kPiece, kv);
#pragma unroll
      for (int e = 0; e < kPiece; ++e) acc += qg[c * kPiece + e] * kv[e];
    }
    ps[g * split + j] = acc;
  }
  __syncthreads();
  PETREL_TRACE_MARK(2);

  // Softmax over the split, a warp per head: running max m, sum l.
  for (int g = warp; g < ng; g += kThreads / 32) {
    float m = -FLT_MAX;
    for (int j = lane; j < n; j += 32) m = fmaxf(m, ps[g * split + j]);
    m = WarpMax(m);
    float l = 0.0f;
    for (int j = lane; j < n; j += 32) {
      const float p = expf(ps[g * split + j] - m);
      ps[g * split + j] = p;
      l += p;
    }
    l = WarpSum(l);
    if (lane == 0) m_s[g] = m, l_s[g] = l;
  }
  __syncthreads();
  PETREL_TRACE_MARK(3);

  // P.V: thread (piece c of the row, token slice sl) sums its tokens for every head.
  const int slices = kThreads / ppr;
  const int c = threadIdx.x % ppr, sl = threadIdx.x / ppr;
  if (sl < slices) {
    float acc[kMaxGroup][kPiece];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
#pragma unroll
      for (int e = 0; e < kPiece; ++e) acc[g][e] = 0.0f;
    for (int j = sl; j < n; j += slices) {
      float vv[kPiece];
      LoadPiece<KvT>(vs + j * rs + c * kPiece, vv);
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g < ng) {
          const float p = ps[g * split + j];
#pragma unroll
          for (int e = 0; e < kPiece; ++e) acc[g][e] += p * vv[e];
        }
      }
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
      if (g < ng)
#pragma unroll
        for (int e = 0; e < kPiece; ++e) red[(sl * ngm + g) * hd + c * kPiece + e] = acc[g][e];
  }
  __syncthreads();
  PETREL_TRACE_MARK(4);

  // The row's window inside this one split: the final result. Otherwise the partial (o / l, m,
  // l), and the last of the row's splits to finish merges them.
  const bool single = start / split == pos / split;
  for (int i = threadIdx.x; i < ng * hd; i += kThreads) {
    const int g = i / hd, d = i % hd;
    float o = 0.0f;
    for (int q = 0; q < slices; ++q) o += red[(q * ngm + g) * hd + d];
    o /= l_s[g];
    const int h = g0 + g;
    if (single) {
      a.out[q_row + (int64_t)h * hd + d] = o;
    } else {
      const int64_t pi = ((int64_t)t * a.n_heads + h) * n_splits + blockIdx.z;
      sc.part_out[pi * hd + d] = o;
      if (d == 0) sc.part_ml[2 * pi] = m_s[g], sc.part_ml[2 * pi + 1] = l_s[g];
    }
  }
  // The rotated q back in place (DecodeHeadOps) by the row's finishing block: every split has
  // read the raw q by then (the single one, or all that counted before the last).
  auto write_q = [&] {
    if constexpr (kHeads)
      for (int i = threadIdx.x; i < ng * hd; i += kThreads) fh.q[q_row + (int64_t)g0 * hd + i] = qr[i];
  };
  if (single) {
    write_q();
    PETREL_TRACE_EXIT(trace_tag | 0x20000000u);
    return;
  }
  if (sc.merge_kernel) {
    // DecodeMergeKernel merges after this kernel; the rotated q waits in q_rot (other splits of
    // the row read the raw q until this kernel ends), written by the row's first split.
    if constexpr (kHeads)
      if ((int)blockIdx.z == start / split)
        for (int i = threadIdx.x; i < ng * hd; i += kThreads) sc.q_rot[q_row + (int64_t)g0 * hd + i] = qr[i];
    PETREL_TRACE_EXIT(trace_tag);
    return;
  }
  // Publish the partial and count it: the block's stores are ordered before thread 0's
  // acquire-release increment by the barrier (the release is cumulative, as in CUTLASS's
  // split-K semaphore), and the last block's reads after the next barrier by its acquire. One
  // fence for the block instead of one per thread.
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned n_valid = (unsigned)(pos / split - start / split + 1);
    unsigned* ctr = sc.counters + (int64_t)t * gridDim.y + blockIdx.y;
    ::cuda::atomic_ref<unsigned, ::cuda::thread_scope_device> counter(*ctr);
    last = counter.fetch_add(1u, ::cuda::memory_order_acq_rel) == n_valid - 1;
    if (last) counter.store(0u, ::cuda::memory_order_relaxed);  // ready for the next launch
  }
  __syncthreads();
  PETREL_TRACE_MARK(5);
  if (!last) {
    PETREL_TRACE_EXIT(trace_tag);
    return;
  }
  PETREL_TRACE_MARK(6);
  // The row's valid splits merged (MergeSplitsLoop's arithmetic).
  const int p0 = start / split, p1 = pos / split, np = p1 - p0 + 1;
  auto part = [&](int g, int p) { return ((int64_t)t * a.n_heads + g0 + g) * n_splits + p; };
  float* po = reinterpret_cast<float*>(smem_raw);  // the K/V rows' space, free since the P.V
  if ((int64_t)ng * np * (hd + 2) + ng <= (int64_t)split * rs * (int)sizeof(KvT) / 2) {
    // The partials into shared memory by cp.async - a short loop of independent copies, through
    // L2 only - and the (m, l) pairs by one load per thread: two round trips in all, where the
    // loops below issue one dependent L2 read per split and output. H100, batch 1: +2% end to
    // end, though the trace still shows ~8,400 cycles in this phase (as for the loops); the same
    // loads unrolled into registers took 14,500 cycles (-5%). What the merging block waits on
    // beyond its loads is not known (a guess: its code is cold in the SM's instruction cache).
    // po [ng][np][hd] the partials; w [ng][np] m_p, then l_p e^(m_p - M); lp [ng][np] l_p;
    // lsum [ng] the heads' sums.
    const int pieces = np * hd / 4;
    for (int i = threadIdx.x; i < ng * pieces; i += kThreads) {
      const int g = i / pieces, c = i % pieces;
      CpAsync16(po + (int64_t)g * np * hd + 4 * c, sc.part_out + part(g, p0) * hd + 4 * c);
    }
    CpAsyncCommit();
    float* w = po + ng * np * hd;
    float* lp = w + ng * np;
    float* lsum = lp + ng * np;
    for (int i = threadIdx.x; i < ng * np; i += kThreads) {
      const int64_t pi = part(i / np, p0 + i % np);
      w[i] = __ldcg(sc.part_ml + 2 * pi);
      lp[i] = __ldcg(sc.part_ml + 2 * pi + 1);
    }
    __syncthreads();
    if (threadIdx.x < ng) {
      const int g = threadIdx.x;
      float m = -FLT_MAX;
      for (int p = 0; p < np; ++p) m = fmaxf(m, w[g * np + p]);
      float l = 0.0f;
      for (int p = 0; p < np; ++p) {
        const float wp = lp[g * np + p] * expf(w[g * np + p] - m);
        w[g * np + p] = wp;
        l += wp;
      }
      lsum[g] = l;
    }
    CpAsyncWaitAll();
    __syncthreads();
    for (int i = threadIdx.x; i < ng * hd; i += kThreads) {
      const int g = i / hd, d = i % hd;
      float o = 0.0f;
      for (int p = 0; p < np; ++p) o += po[((int64_t)g * np + p) * hd + d] * w[g * np + p];
      a.out[q_row + (int64_t)(g0 + g) * hd + d] = o / lsum[g];
    }
  } else {
    for (int i = threadIdx.x; i < ng * hd; i += kThreads) {
      const int g = i / hd, d = i % hd;
      a.out[q_row + (int64_t)(g0 + g) * hd + d] =
          MergeSplitsLoop(reinterpret_cast<const float2*>(sc.part_ml) + part(g, 0),
                          sc.part_out + part(g, 0) * hd + d, p0, p1, hd);
    }
  }
  PETREL_TRACE_MARK(7);
  write_q();
  PETREL_TRACE_EXIT(trace_tag | 0x40000000u);
}

// The split merge as its own launch (DecodeAttentionScratch::merge_kernel): one block per (row,
// head), one thread per element of the head; the same arithmetic, in the same order, as the
// merge inside DecodeAttentionKernel. The in-kernel merge runs in the row's last block, on an SM
// that has rarely run that code; the trace measured ~8,400 cycles there however it was written.
template <bool kQ>
__global__ void __launch_bounds__(kMaxHeadDim)
    DecodeMergeKernel(PagedAttentionArgs a, int split, int n_splits, DecodeAttentionScratch sc,
                      float* q) {
  PdlLaunchDependents();
  const int t = blockIdx.x, h = blockIdx.y, d = threadIdx.x, hd = a.head_dim;
  const RowWindow rw = RowWindowOf(a, t);
  const int p0 = rw.start / split, p1 = rw.pos / split;
  PdlWait();
  if (p0 == p1) return;  // one split: the attention kernel wrote the row (and q) itself
  const int64_t base = ((int64_t)t * a.n_heads + h) * n_splits;
  const int64_t o_at = (int64_t)t * a.n_heads * hd + (int64_t)h * hd + d;
  const float2* ml = reinterpret_cast<const float2*>(sc.part_ml) + base;
  const float* po = sc.part_out + base * hd + d;
  // The rotated q is loaded with the partials (after the output's store it would be a second
  // round trip: the compiler cannot move a load above a store it cannot prove disjoint).
  const float qv = kQ ? __ldcg(sc.q_rot + o_at) : 0.0f;
  if (p1 - p0 < kMergeRegs) {
    // Up to kMergeRegs splits: every load issued before any is used (one L2 round trip).
    float2 v[kMergeRegs];
    float x[kMergeRegs];
#pragma unroll
    for (int i = 0; i < kMergeRegs; ++i) {
      const bool in = p0 + i <= p1;
      v[i] = in ? __ldcg(ml + p0 + i) : make_float2(-FLT_MAX, 0.0f);
      x[i] = in ? __ldcg(po + (int64_t)(p0 + i) * hd) : 0.0f;
    }
    float m = -FLT_MAX, l = 0.0f, o = 0.0f;
#pragma unroll
    for (int i = 0; i < kMergeRegs; ++i) m = fmaxf(m, v[i].x);
#pragma unroll
    for (int i = 0; i < kMergeRegs; ++i) {
      if (p0 + i > p1) break;
      const float w = v[i].y * expf(v[i].x - m);
      l += w;
      o += x[i] * w;
    }
    a.out[o_at] = o / l;
  } else {
    a.out[o_at] = MergeSplitsLoop(ml, po, p0, p1, hd);
  }
  if constexpr (kQ) q[o_at] = qv;
}

// One block per row, one thread per frequency (half <= kMaxHeadDim / 2): the sincos before the
// wait (position and frequencies are immutable inputs), the store after it, so that no reader
// of an earlier step's table can overlap it.
__global__ void RopeTableKernel(float2* __restrict__ out, const int32_t* __restrict__ positions,
                                const float* __restrict__ inv_freq, float scaling, int half) {
  PdlLaunchDependents();
  const int t = blockIdx.x, i = threadIdx.x;
  float2 v;
  RopeCosSin((float)positions[t], inv_freq[i], scaling, v.x, v.y);
  PdlWait();
  out[(int64_t)t * half + i] = v;
}

}  // namespace

void LaunchRopeTable(float2* out, const int32_t* positions, const float* inv_freq, float scaling,
                     int T, int half, cudaStream_t stream) {
  if (T == 0) return;
  CUDA_CHECK(half > 0 && half <= kMaxHeadDim / 2 ? cudaSuccess : cudaErrorInvalidConfiguration);
  LaunchPdl(RopeTableKernel, T, half, 0, stream, out, positions, inv_freq, scaling, half);
}

PETREL_TRACE_SETTER(SetDecodeAttentionTrace)

int DecodeSplit(const PagedAttentionArgs& a) {
  // 16-bit KV: 32 tokens for a few rows (more blocks, shorter chains: on the H100, Qwen3-0.6B at
  // contexts 128-384, batch 1 ran 807-813 tok/s with 32, 755-770 with 64, 783-794 with 128), 64
  // for batches (the grid covers the table's capacity, so 32 makes many empty blocks: batch 256
  // fell from 31,174 to 23,456 tok/s). PETREL_CUDA_DECODE_SPLIT=32|64|128|256 overrides it.
  static const int forced = [] {
    const char* v = std::getenv("PETREL_CUDA_DECODE_SPLIT");
    const int n = v ? std::atoi(v) : 0;
    return (n == 32 || n == 64 || n == 128 || n == 256) ? n : 0;
  }();
  if (a.kv_elem == Elem::kF32) return 32;
  return forced ? forced : (a.n_rows <= 8 ? 32 : 64);
}

bool DecodeAttentionSupported(const PagedAttentionArgs& a) {
  const int kv_size = a.kv_elem == Elem::kF32 ? 4 : 2;
  const int piece = 16 / kv_size;
  return a.head_dim > 0 && a.head_dim % piece == 0 && a.head_dim <= kMaxHeadDim &&
         a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0 &&
         SmemBytes(a, DecodeSplit(a), kv_size, true) <= (size_t)kMaxSmem;
}

bool DecodeHeadOpsSupported(const PagedAttentionArgs& a) {
  return DecodeAttentionSupported(a) && a.head_dim % 2 == 0 &&
         a.n_heads / a.n_kv_heads <= kMaxGroup;
}

int64_t DecodePartFloats(const PagedAttentionArgs& a, int n_splits) {
  return (int64_t)a.n_rows * a.n_heads * n_splits * (a.head_dim + 2);
}

int64_t DecodeCounters(const PagedAttentionArgs& a) {
  const int group = a.n_heads / a.n_kv_heads;
  return (int64_t)a.n_rows * a.n_kv_heads * ((group + kMaxGroup - 1) / kMaxGroup);
}

void ConfigureDecodeAttention() {
  auto raise = [](auto kernel) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmem));
  };
  raise(DecodeAttentionKernel<float, false>);
  raise(DecodeAttentionKernel<__nv_bfloat16, false>);
  raise(DecodeAttentionKernel<__half, false>);
  raise(DecodeAttentionKernel<float, true>);
  raise(DecodeAttentionKernel<__nv_bfloat16, true>);
  raise(DecodeAttentionKernel<__half, true>);
}

void LaunchDecodeAttention(const PagedAttentionArgs& a, int n_splits,
                           const DecodeAttentionScratch& s, bool prefetch, cudaStream_t stream,
                           const DecodeHeadOps& heads) {
  if (a.n_rows == 0) return;
  CUDA_CHECK(DecodeAttentionSupported(a) &&
                     (!heads.on || (DecodeHeadOpsSupported(a) && heads.rope_cs != nullptr)) &&
                     (!s.merge_kernel || !heads.on || s.q_rot != nullptr)
                 ? cudaSuccess
                 : cudaErrorInvalidConfiguration);
  const int split = DecodeSplit(a);
  const int group = a.n_heads / a.n_kv_heads;
  const int chunks = (group + kMaxGroup - 1) / kMaxGroup;
  const dim3 grid(a.n_rows, a.n_kv_heads * chunks, n_splits);
  DispatchElem(a.kv_elem, [&](auto tag_) {
    using KvT = ElemType<decltype(tag_)>;
    LaunchPdl(heads.on ? DecodeAttentionKernel<KvT, true> : DecodeAttentionKernel<KvT, false>,
              grid, kThreads, SmemBytes(a, split, sizeof(KvT), heads.on), stream,
              a, split, n_splits, s, prefetch, heads);
  });
  if (s.merge_kernel)
    LaunchPdl(heads.on ? DecodeMergeKernel<true> : DecodeMergeKernel<false>,
              dim3(a.n_rows, a.n_heads), a.head_dim, 0, stream, a, split, n_splits, s, heads.q);
}

}  // namespace petrel::kernels::cuda
