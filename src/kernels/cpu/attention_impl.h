// Template body of the CPU attention; included by one .cc per ISA so the compiler vectorises the
// dot products and axpys for that ISA. Not a public header.
#pragma once

#include <algorithm>
#include <atomic>
#include <climits>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/attention.h"
#if defined(__AVX512F__)
#include "kernels/cpu/simd_exp_avx512.h"
#endif

// Everything here has internal linkage (anonymous namespace): each ISA's .cc gets its own copy.
// As ordinary inline functions and templates, the copies of attention_generic.cc and
// attention_avx512.cc would share mangled names and the linker would keep one of them for both.
namespace petrel::kernels::cpu::impl {
namespace {

// KV element types: float, uint16_t (bf16 bits) and int8_t (codes with a per-head-vector scale).
template <typename KvT>
inline float ToF(KvT v) {
  if constexpr (sizeof(KvT) == 4) return v;
  else if constexpr (sizeof(KvT) == 1) return (float)v;
  else return BF16ToF32(v);
}

// Dot and axpy over one head vector. The AVX-512 build (attention_avx512.cc defines __AVX512F__)
// uses explicit 16-lane code; elsewhere 16 independent partial sums let the compiler vectorise
// without -ffast-math.
#if defined(__AVX512F__)
template <typename KvT>
inline __m512 LoadKv16(const KvT* p) {
  if constexpr (sizeof(KvT) == 4) {
    return _mm512_loadu_ps(p);
  } else if constexpr (sizeof(KvT) == 1) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  } else {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}
#endif

template <typename KvT>
inline float Dot(const float* __restrict q, const KvT* __restrict k, int n) {
  int i = 0;
  float s = 0;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LoadKv16(k + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), LoadKv16(k + i + 16), a1);
  }
  for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LoadKv16(k + i), a0);
  s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#else
  float acc[16] = {};
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += q[i + j] * ToF(k[i + j]);
  for (int j = 0; j < 16; ++j) s += acc[j];
#endif
  for (; i < n; ++i) s += q[i] * ToF(k[i]);
  return s;
}

template <typename KvT>
inline void Axpy(float* __restrict out, float w, const KvT* __restrict v, int n) {
  int i = 0;
#if defined(__AVX512F__)
  const __m512 wv = _mm512_set1_ps(w);
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_fmadd_ps(wv, LoadKv16(v + i), _mm512_loadu_ps(out + i)));
#endif
  for (; i < n; ++i) out[i] += w * ToF(v[i]);
}

// Geometry of one layer's call, shared by both paths.
struct Geometry {
  int hd, group;
  int n_kv_heads;
  int64_t row_stride;    // elements per query / output row (all heads)
};

// Pointer to cached token t of a sequence (kv head kvh), through its block table. The CPU pools
// are [n_blocks, n_kv_heads, block_size, head_dim] (attention.h): the following tokens of the
// same block and head are hd elements apart.
template <typename KvT>
inline const KvT* TokenAt(const KvT* pool, const AttentionSeq& seq, int block_size, const Geometry& g,
                          int t, int kvh) {
  const int64_t slot = (int64_t)seq.block_table[t / block_size] * block_size + t % block_size;
  return pool + KvVectorOffset(slot, kvh, g.n_kv_heads, block_size, g.hd);
}

// Scale of cached token t (kv head kvh) of an int8 cache; 1 for float caches (scales null).
inline float ScaleAt(const float* scales, const AttentionSeq& seq, int block_size, const Geometry& g, int t,
                     int kvh) {
  if (!scales) return 1.0f;
  return scales[((int64_t)seq.block_table[t / block_size] * block_size + t % block_size) * g.n_kv_heads + kvh];
}

// One decode row i of a sequence and the G query heads of kv head kvh: its keys [start, start + n)
// (causal, sliding window) and its q / out vectors (the group's heads, adjacent).
struct RowKeys {
  int start, n;
  const float* q;
  float* out;
};
inline RowKeys RowOf(const AttentionArgs& a, const Geometry& g, const AttentionSeq& seq, int i, int kvh) {
  const int row = seq.q_begin + i;
  const int pos = seq.ctx_len - seq.q_len + i;
  const int start = a.p.sliding_window > 0 ? std::max(0, pos - a.p.sliding_window + 1) : 0;
  const int64_t at = row * g.row_stride + (int64_t)kvh * g.group * g.hd;
  return {start, pos - start + 1, a.q + at, a.out + at};
}

// Software prefetch of one cached head vector (hd elements). The KV read by a decode step was
// written steps ago and evicted since by the weights streaming through the caches; the hardware
// prefetchers do not follow the block table (nor page boundaries), so each key would wait for
// DRAM latency. kAhead keys ahead, across block boundaries.
constexpr int kAhead = 4;
constexpr int kAheadBytes = 8192;  // RowGroup16's distance
template <typename KvT>
inline void PrefetchRow(const KvT* p, int hd) {
#if defined(__AVX512F__)
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t off = 0; off < (int64_t)hd * (int64_t)sizeof(KvT); off += 64) _mm_prefetch(c + off, _MM_HINT_T0);
#else
  (void)p;
  (void)hd;
#endif
}

// One query row and the `group` query heads that share kv head kvh, against all their keys:
// scores, softmax, weighted sum of values, one key at a time (a horizontal reduction per key and
// head). Decode uses this: one row has too few query vectors to fill the tiled path's 16 lanes.
// Each key and value vector is read from memory once for the whole group (the second head finds
// it in L1); per head the arithmetic is that of a single (row, head).
template <typename KvT>
void RowGroup(const AttentionArgs& a, const Geometry& g, const AttentionSeq& seq, int i, int kvh,
              std::vector<float>& scores) {
  const AttentionParams& p = a.p;
  const int hd = g.hd, G = g.group;
  const KvT* kp = static_cast<const KvT*>(a.k_pool);
  const KvT* vp = static_cast<const KvT*>(a.v_pool);
  const auto [start, n, q, out] = RowOf(a, g, seq, i, kvh);
  scores.resize((size_t)G * n);
  float* sc = scores.data();  // [G][n]
  // Walk the block table one block at a time (no division per position).
  for (int j = 0; j < n;) {
    const int t = start + j;
    const int run = std::min(a.block_size - t % a.block_size, n - j);
    const KvT* kb = TokenAt(kp, seq, a.block_size, g, t, kvh);
    const KvT* vb = TokenAt(vp, seq, a.block_size, g, t, kvh);
    const KvT* kn = j + run < n ? TokenAt(kp, seq, a.block_size, g, t + run, kvh) : nullptr;  // next block
    if (j == 0)
      for (int r = 0; r < std::min(kAhead, run); ++r) PrefetchRow(kb + r * hd, hd);
    for (int r = 0; r < run; ++r, ++j) {
      if (r + kAhead < run) PrefetchRow(kb + (r + kAhead) * hd, hd);
      else if (kn && r + kAhead - run < n - j - (run - r)) PrefetchRow(kn + (r + kAhead - run) * hd, hd);
      PrefetchRow(vb + r * hd, hd);  // the values, for the second pass
      const float ks = sizeof(KvT) == 1 ? ScaleAt(a.k_scale, seq, a.block_size, g, t + r, kvh) : 1.0f;
      for (int h = 0; h < G; ++h) {
        sc[h * n + j] = p.scale * Dot(q + h * hd, kb + r * hd, hd);
        if constexpr (sizeof(KvT) == 1) sc[h * n + j] *= ks;
      }
    }
  }
  for (int h = 0; h < G; ++h) {
    float* s = sc + h * n;
    float mx = -INFINITY;
    for (int j = 0; j < n; ++j) mx = std::max(mx, s[j]);
    float sum = 0;
    for (int j = 0; j < n; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < n; ++j) s[j] *= inv;
  }
  std::fill(out, out + (int64_t)G * hd, 0.0f);
  for (int j = 0; j < n;) {
    const int t = start + j;
    const int run = std::min(a.block_size - t % a.block_size, n - j);
    const KvT* vb = TokenAt(vp, seq, a.block_size, g, t, kvh);
    for (int r = 0; r < run; ++r, ++j) {
      const float vs = sizeof(KvT) == 1 ? ScaleAt(a.v_scale, seq, a.block_size, g, t + r, kvh) : 1.0f;
      for (int h = 0; h < G; ++h) Axpy(out + h * hd, sc[h * n + j] * vs, vb + r * hd, hd);
    }
  }
}

#if defined(__AVX512F__)
// P.V of RowGroup16 for heads [h0, h0 + nh) (nh <= HB) and head-vector pieces [c0, c0 + nc) of 16
// (nc <= CB): HB x CB accumulators stay in registers across all n keys, each V piece loaded once
// for the heads; out = acc * inv[h].
template <typename KvT, int HB, int CB>
inline void PvBlock(const KvT* const* vrow, const float* vscale, const float* sc, int n, int h0,
                    int nh, int c0, int nc, const float* inv, float* out, int hd) {
  __m512 acc[HB][CB];
#pragma GCC unroll 8
  for (int h = 0; h < HB; ++h)
#pragma GCC unroll 8
    for (int c = 0; c < CB; ++c) acc[h][c] = _mm512_setzero_ps();
  for (int j = 0; j < n; ++j) {
    __m512 vv[CB];
#pragma GCC unroll 8
    for (int c = 0; c < CB; ++c)
      if (c < nc) vv[c] = LoadKv16(vrow[j] + (c0 + c) * 16);
    const float vs = vscale ? vscale[j] : 1.0f;
#pragma GCC unroll 8
    for (int h = 0; h < HB; ++h) {
      if (h < nh) {
        const __m512 pj = _mm512_set1_ps(sc[(h0 + h) * n + j] * vs);
#pragma GCC unroll 8
        for (int c = 0; c < CB; ++c)
          if (c < nc) acc[h][c] = _mm512_fmadd_ps(pj, vv[c], acc[h][c]);
      }
    }
  }
#pragma GCC unroll 8
  for (int h = 0; h < HB; ++h) {
    if (h < nh) {
      const __m512 iv = _mm512_set1_ps(inv[h0 + h]);
#pragma GCC unroll 8
      for (int c = 0; c < CB; ++c)
        if (c < nc) _mm512_storeu_ps(out + (h0 + h) * hd + (c0 + c) * 16, _mm512_mul_ps(acc[h][c], iv));
    }
  }
}

// RowGroup (one decode row, the G query heads of kv head kvh) for head dims that are a multiple
// of 16, with the arithmetic in registers: the scores of 4 keys x up to 4 heads at a time (each
// K piece loaded once for the heads, 16 independent FMA chains, one horizontal sum per score), a
// vectorised softmax (Exp16, the normalisation folded into the output), and P.V accumulated in
// registers over all keys. Same math as RowGroup; the scalar version took ~8 us per unit at 128
// keys on the 2-vCPU VM (13% of a Q4_0 decode step).
template <typename KvT>
void RowGroup16(const AttentionArgs& a, const Geometry& g, const AttentionSeq& seq, int i, int kvh,
                std::vector<float>& scores) {
  const AttentionParams& p = a.p;
  const int hd = g.hd, G = g.group, nv = hd / 16;
  const KvT* kp = static_cast<const KvT*>(a.k_pool);
  const KvT* vp = static_cast<const KvT*>(a.v_pool);
  const auto [start, n, q, out] = RowOf(a, g, seq, i, kvh);
  // Scratch: scores [G][n], the key and value rows' addresses and (int8) scales [n] each.
  const size_t ptr_floats = (sizeof(const KvT*) + sizeof(float) - 1) / sizeof(float);
  const size_t ptr_at = ((size_t)G * n + ptr_floats - 1) / ptr_floats * ptr_floats;  // aligned
  scores.resize(ptr_at + 2 * (size_t)n * ptr_floats + 2 * (size_t)n + 16);
  float* sc = scores.data();
  const KvT** krow = reinterpret_cast<const KvT**>(sc + ptr_at);
  const KvT** vrow = krow + n;
  float* kscale = reinterpret_cast<float*>(vrow + n);
  float* vscale = kscale + n;
  const bool i8 = sizeof(KvT) == 1;
  for (int j = 0; j < n;) {  // the block table walked once
    const int t = start + j;
    const int run = std::min(a.block_size - t % a.block_size, n - j);
    const KvT* kb = TokenAt(kp, seq, a.block_size, g, t, kvh);
    const KvT* vb = TokenAt(vp, seq, a.block_size, g, t, kvh);
    for (int r = 0; r < run; ++r, ++j) {
      krow[j] = kb + r * hd;
      vrow[j] = vb + r * hd;
      if (i8) {
        kscale[j] = ScaleAt(a.k_scale, seq, a.block_size, g, t + r, kvh);
        vscale[j] = ScaleAt(a.v_scale, seq, a.block_size, g, t + r, kvh);
      }
    }
  }
  // Keys prefetched kAheadBytes ahead (whole groups of 4): 8 KB instead of 4 keys took a decode
  // layer's attention from DRAM 20-25% faster (bench/attention_bench --flush-mb 32; 4 and 16 KB,
  // or values prefetched ahead as well, were not better).
  const int ahead = std::max(4, kAheadBytes / (int)(hd * sizeof(KvT)) / 4 * 4);
  for (int j = 0; j < std::min(ahead, n); ++j) PrefetchRow(krow[j], hd);
  // Scores.
  for (int j0 = 0; j0 < n; j0 += 4) {
    const int nk = std::min(4, n - j0);
    for (int j = j0 + ahead; j < std::min(n, j0 + ahead + 4); ++j) PrefetchRow(krow[j], hd);
    for (int j = j0; j < j0 + nk; ++j) PrefetchRow(vrow[j], hd);  // for P.V
    for (int h0 = 0; h0 < G; h0 += 4) {
      const int nh = std::min(4, G - h0);
      __m512 acc[4][4];
#pragma GCC unroll 4
      for (int h = 0; h < 4; ++h)
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) acc[h][k] = _mm512_setzero_ps();
      for (int c = 0; c < nv; ++c) {
        __m512 kv[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) kv[k] = k < nk ? LoadKv16(krow[j0 + k] + c * 16) : _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int h = 0; h < 4; ++h) {
          if (h < nh) {
            const __m512 qv = _mm512_loadu_ps(q + (h0 + h) * hd + c * 16);
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) acc[h][k] = _mm512_fmadd_ps(kv[k], qv, acc[h][k]);
          }
        }
      }
      for (int h = 0; h < nh; ++h)
        for (int k = 0; k < nk; ++k)
          sc[(h0 + h) * n + j0 + k] = p.scale * _mm512_reduce_add_ps(acc[h][k]) * (i8 ? kscale[j0 + k] : 1.0f);
    }
  }
  // Softmax per head: e^(s - max), the sum's inverse applied to the output.
  float inv[64];
  for (int h = 0; h < G; ++h) {
    float* s = sc + h * n;
    __m512 mv = _mm512_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 16 <= n; j += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(s + j));
    float mx = _mm512_reduce_max_ps(mv);
    for (; j < n; ++j) mx = std::max(mx, s[j]);
    const __m512 mb = _mm512_set1_ps(mx);
    __m512 sum = _mm512_setzero_ps();
    for (j = 0; j < n; j += 16) {
      const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
      const __m512 e = _mm512_maskz_mov_ps(m, Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), mb)));
      _mm512_mask_storeu_ps(s + j, m, e);
      sum = _mm512_add_ps(sum, e);
    }
    inv[h] = 1.0f / _mm512_reduce_add_ps(sum);
  }
  // P.V: two heads x the whole vector (hd <= 128) or four heads x 64 elements per pass.
  const float* vs = i8 ? vscale : nullptr;
  if (G <= 2 && nv <= 8) {
    PvBlock<KvT, 2, 8>(vrow, vs, sc, n, 0, G, 0, nv, inv, out, hd);
  } else {
    for (int h0 = 0; h0 < G; h0 += 4)
      for (int c0 = 0; c0 < nv; c0 += 4)
        PvBlock<KvT, 4, 4>(vrow, vs, sc, n, h0, std::min(4, G - h0), c0, std::min(4, nv - c0), inv, out, hd);
  }
}

constexpr int kLanes = 16;  // query vectors per tile
constexpr int kChunk = 16;  // keys per step of the online softmax

// Tiled prefill attention in the manner of FlashAttention-2 (Dao, 2023): a tile of 16 query
// vectors — consecutive (row, head) pairs that share one kv head, so GQA groups read K/V once —
// walks its keys 16 at a time with an online softmax (running max m, running sum l, output
// rescaled by e^(m_old - m_new)), never materialising the score matrix.
// The tile is held transposed, one query vector per SIMD lane: Qt[d] and Ot[d] are 16-lane
// vectors, so S[j] = sum_d K[j][d] * Qt[d] and Ot[d] += P[j] * V[j][d] are plain FMAs with a
// broadcast K/V element (no horizontal reductions), and the softmax statistics are per lane.
// first: index of lane 0 in the row-major enumeration (row, head-in-group) of this kv head.
template <typename KvT>
void Tile(const AttentionArgs& a, const Geometry& g, const AttentionSeq& seq, int kvh, int first,
          std::vector<float>& buf) {
  const AttentionParams& p = a.p;
  const int hd = g.hd;
  const int window = p.sliding_window;
  const KvT* kp = static_cast<const KvT*>(a.k_pool);
  const KvT* vp = static_cast<const KvT*>(a.v_pool);
  // Scratch: Qt, Ot [hd][16]; K and V chunks converted to f32 [16][hd]; one zero row.
  buf.resize((size_t)hd * (4 * kLanes + 1));
  float* qt = buf.data();
  float* ot = qt + hd * kLanes;
  float* kc = ot + hd * kLanes;
  float* vc = kc + hd * kChunk;
  float* zero = vc + hd * kChunk;
  std::fill(zero, zero + hd, 0.0f);
  alignas(64) int32_t qpos[kLanes];
  int lo = INT32_MAX, hi = -1;  // key range of the tile
  const int n_vec = seq.q_len * g.group;
  for (int m = 0; m < kLanes; ++m) {
    const int idx = first + m;
    if (idx >= n_vec) {
      qpos[m] = -1;  // idle lane: every key masked
      for (int d = 0; d < hd; ++d) qt[d * kLanes + m] = 0.0f;
      continue;
    }
    const int i = idx / g.group, h = kvh * g.group + idx % g.group;
    qpos[m] = seq.ctx_len - seq.q_len + i;
    lo = std::min(lo, window > 0 ? std::max(0, qpos[m] - window + 1) : 0);
    hi = std::max(hi, qpos[m]);
    const float* q = a.q + (seq.q_begin + i) * g.row_stride + (int64_t)h * hd;
    for (int d = 0; d < hd; ++d) qt[d * kLanes + m] = q[d] * p.scale;
  }
  for (int d = 0; d < hd; ++d) _mm512_storeu_ps(ot + d * kLanes, _mm512_setzero_ps());
  const __m512i qp = _mm512_load_si512(qpos);
  const __m512i qlo = window > 0 ? _mm512_sub_epi32(qp, _mm512_set1_epi32(window - 1)) : _mm512_set1_epi32(INT32_MIN);
  __m512 mx = _mm512_set1_ps(-INFINITY), l = _mm512_setzero_ps();
  const float* krow[kChunk];
  const float* vrow[kChunk];
  for (int t0 = lo; t0 <= hi;) {
    // One chunk: up to 16 keys inside one cache block.
    const int nk = std::min({kChunk, a.block_size - t0 % a.block_size, hi - t0 + 1});
    const KvT* kb = TokenAt(kp, seq, a.block_size, g, t0, kvh);
    const KvT* vb = TokenAt(vp, seq, a.block_size, g, t0, kvh);
    for (int j = 0; j < kChunk; ++j) {
      if (j >= nk) {
        krow[j] = vrow[j] = zero;
      } else if constexpr (sizeof(KvT) == 4) {
        krow[j] = reinterpret_cast<const float*>(kb + j * hd);
        vrow[j] = reinterpret_cast<const float*>(vb + j * hd);
      } else {
        // bf16: widen; int8: widen and apply the head vector's scale (1 for bf16).
        const float ks = ScaleAt(a.k_scale, seq, a.block_size, g, t0 + j, kvh);
        const float vs = ScaleAt(a.v_scale, seq, a.block_size, g, t0 + j, kvh);
        for (int d = 0; d < hd; ++d) {
          kc[j * hd + d] = ToF(kb[j * hd + d]) * ks;
          vc[j * hd + d] = ToF(vb[j * hd + d]) * vs;
        }
        krow[j] = kc + j * hd;
        vrow[j] = vc + j * hd;
      }
    }
    // Scores S[j] (lanes: query vectors), 8 keys at a time.
    __m512 s[kChunk];
    for (int j0 = 0; j0 < kChunk; j0 += 8) {
      __m512 acc[8];
      for (int jj = 0; jj < 8; ++jj) acc[jj] = _mm512_setzero_ps();
      for (int d = 0; d < hd; ++d) {
        const __m512 q = _mm512_loadu_ps(qt + d * kLanes);
        for (int jj = 0; jj < 8; ++jj) acc[jj] = _mm512_fmadd_ps(_mm512_set1_ps(krow[j0 + jj][d]), q, acc[jj]);
      }
      for (int jj = 0; jj < 8; ++jj) s[j0 + jj] = acc[jj];
    }
    // Causal / window mask, then the online softmax update.
    __m512 cmax = mx;
    __mmask16 live[kChunk];
    for (int j = 0; j < kChunk; ++j) {
      const __m512i kpos = _mm512_set1_epi32(t0 + j);
      live[j] = j < nk ? (__mmask16)(_mm512_cmple_epi32_mask(kpos, qp) & _mm512_cmpge_epi32_mask(kpos, qlo)) : (__mmask16)0;
      cmax = _mm512_mask_max_ps(cmax, live[j], cmax, s[j]);
    }
    // Lanes with no live key yet keep max -inf: use 0 there so nothing becomes NaN.
    const __mmask16 seen = _mm512_cmp_ps_mask(cmax, _mm512_set1_ps(-INFINITY), _CMP_NEQ_UQ);
    const __m512 mnew = _mm512_maskz_mov_ps(seen, cmax);
    const __m512 corr = _mm512_mask_blend_ps(seen, _mm512_set1_ps(1.0f), Exp16(_mm512_sub_ps(mx, mnew)));
    mx = _mm512_mask_blend_ps(seen, mx, mnew);
    l = _mm512_mul_ps(l, corr);
    for (int j = 0; j < kChunk; ++j) {
      s[j] = _mm512_maskz_mov_ps(live[j], Exp16(_mm512_sub_ps(s[j], mnew)));
      l = _mm512_add_ps(l, s[j]);
    }
    // Ot = Ot * corr + sum_j P[j] V[j][d], 8 rows of Ot at a time.
    int d0 = 0;
    for (; d0 + 8 <= hd; d0 += 8) {
      __m512 acc[8];
      for (int dd = 0; dd < 8; ++dd) acc[dd] = _mm512_mul_ps(_mm512_loadu_ps(ot + (d0 + dd) * kLanes), corr);
      for (int j = 0; j < kChunk; ++j)
        for (int dd = 0; dd < 8; ++dd) acc[dd] = _mm512_fmadd_ps(s[j], _mm512_set1_ps(vrow[j][d0 + dd]), acc[dd]);
      for (int dd = 0; dd < 8; ++dd) _mm512_storeu_ps(ot + (d0 + dd) * kLanes, acc[dd]);
    }
    for (; d0 < hd; ++d0) {
      __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(ot + d0 * kLanes), corr);
      for (int j = 0; j < kChunk; ++j) acc = _mm512_fmadd_ps(s[j], _mm512_set1_ps(vrow[j][d0]), acc);
      _mm512_storeu_ps(ot + d0 * kLanes, acc);
    }
    t0 += nk;
  }
  // out = Ot / l, back to row-major.
  alignas(64) float inv[kLanes];
  _mm512_store_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), l));
  for (int m = 0; m < kLanes; ++m) {
    const int idx = first + m;
    if (idx >= n_vec) break;
    const int i = idx / g.group, h = kvh * g.group + idx % g.group;
    float* out = a.out + (seq.q_begin + i) * g.row_stride + (int64_t)h * hd;
    for (int d = 0; d < hd; ++d) out[d] = ot[d * kLanes + m] * inv[m];
  }
}
#endif

template <typename KvT>
void Run(const AttentionArgs& a, ThreadPool& pool) {
  const AttentionParams& p = a.p;
  const Geometry g{p.head_dim, p.n_heads / p.n_kv_heads, p.n_kv_heads, (int64_t)p.n_heads * p.head_dim};
  // Work units, each with its cost in keys visited: a tile of 16 query vectors of one kv head
  // (sequences with at least 16 query vectors per kv head, AVX-512 only), else one row and the
  // query heads of one kv head.
  struct Unit {
    int64_t cost;
    int seq, a, b;  // tile: kv head, first lane index; row: row, kv head
    bool tile;
  };
  std::vector<Unit> units;
  for (int s = 0; s < (int)a.seqs.size(); ++s) {
    const AttentionSeq& seq = a.seqs[s];
    const int first_pos = seq.ctx_len - seq.q_len;
    auto keys = [&](int i) {  // keys of row i
      const int pos = first_pos + i;
      return (int64_t)(p.sliding_window > 0 ? std::min(pos + 1, p.sliding_window) : pos + 1);
    };
#if defined(__AVX512F__)
    const int n_vec = seq.q_len * g.group;
    if (n_vec >= kLanes) {
      for (int kvh = 0; kvh < p.n_kv_heads; ++kvh)
        for (int f = 0; f < n_vec; f += kLanes) {
          const int last_row = (std::min(n_vec, f + kLanes) - 1) / g.group;
          units.push_back({keys(last_row) * kLanes, s, kvh, f, true});
        }
      continue;
    }
#endif
    for (int i = 0; i < seq.q_len; ++i)
      for (int kvh = 0; kvh < p.n_kv_heads; ++kvh) units.push_back({keys(i) * g.group, s, i, kvh, false});
  }
  // Largest first, then dealt dynamically: balances causal prefill (later rows cost more).
  std::stable_sort(units.begin(), units.end(), [](const Unit& x, const Unit& y) { return x.cost > y.cost; });
  std::atomic<int64_t> next{0};
  pool.RunOnAll([&](int) {
    std::vector<float> scratch;
    for (int64_t u; (u = next.fetch_add(1, std::memory_order_relaxed)) < (int64_t)units.size();) {
      const Unit& w = units[u];
#if defined(__AVX512F__)
      if (w.tile) {
        Tile<KvT>(a, g, a.seqs[w.seq], w.a, w.b, scratch);
        continue;
      }
#endif
#if defined(__AVX512F__)
      if (g.hd % 16 == 0 && g.group <= 64) {
        RowGroup16<KvT>(a, g, a.seqs[w.seq], w.a, w.b, scratch);
        continue;
      }
#endif
      RowGroup<KvT>(a, g, a.seqs[w.seq], w.a, w.b, scratch);
    }
  });
}

inline void Dispatch(const AttentionArgs& a, ThreadPool& pool) {
  if (a.kv_dtype == DType::kBF16) Run<uint16_t>(a, pool);
  else if (a.kv_dtype == DType::kI8) Run<int8_t>(a, pool);
  else Run<float>(a, pool);
}

}  // namespace
}  // namespace petrel::kernels::cpu::impl
