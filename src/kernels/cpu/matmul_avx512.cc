// AVX-512 matmul out[T, N] = x[T, K] . W[N, K]^T (+ bias), f32 accumulation.
//
// Three regimes:
//  - T <= 8 (decode, kDecodeMaxRows): memory-bound on W. Weight rows are converted to f32 in
//    registers (bf16: zero-extend + shift; f16: vcvtph2ps) and dotted with all T activation rows
//    at once, so each weight byte is read exactly once: T = 1..2 one row after the other (one
//    sequential stream), T = 3..7 four rows per tile, T = 8 two.
//  - T = 9..256: 4-row weight tiles (L1-resident after their first pass) dotted with the
//    activation rows 6 at a time (TokenGroupRows).
//  - T > 256 (prefill): compute-bound. Four weight rows are converted once into an f32 scratch
//    panel (L1-resident per K block), then a 4 x 6 register tile (24 zmm accumulators) runs over
//    the activation rows; each step does 4 + 6 loads for 24 FMAs.
// Compiled with -mavx512f/bw/vl/dq (see cmake/CpuVariants.cmake); chosen at run time.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace petrel::kernels::cpu {

namespace {

constexpr int kRows = 4;     // weight rows per tile
constexpr int kTile = 6;     // activation rows per tile (prefill)
constexpr int64_t kKc = 1024;  // K block for the prefill path

template <DType D>
inline __m512 LoadW(const void* base, int64_t idx) {
  if constexpr (D == DType::kF32) {
    return _mm512_loadu_ps(static_cast<const float*>(base) + idx);
  } else if constexpr (D == DType::kBF16) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + idx));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + idx));
    return _mm512_cvtph_ps(h);
  }
}

template <DType D>
inline __m512 LoadWMasked(const void* base, int64_t idx, __mmask16 m) {
  if constexpr (D == DType::kF32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + idx);
  } else if constexpr (D == DType::kBF16) {
    __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + idx);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + idx);
    return _mm512_cvtph_ps(h);
  }
}

template <DType D>
inline const void* WRow(const MatMulArgs& a, int64_t n) {
  constexpr int64_t esize = D == DType::kF32 ? 4 : 2;
  return static_cast<const char*>(a.w) + n * a.K * esize;
}

// Decode path: R weight rows x T activation rows, whole K.
template <DType D, int R, int T>
void DotTile(const MatMulArgs& a, int64_t n, int64_t t0) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  const void* w[R];
  for (int r = 0; r < R; ++r) w[r] = WRow<D>(a, n + r);
  const float* x[T];
  for (int t = 0; t < T; ++t) x[t] = a.x + (t0 + t) * a.K;
  constexpr int64_t esize = D == DType::kF32 ? 4 : 2;
  const int64_t ahead = (int64_t)R * a.K * esize;  // the next tile's rows, same column
  int64_t k = 0;
  for (; k + 16 <= a.K; k += 16) {
    if ((k * esize) % 64 == 0)
      for (int r = 0; r < R; ++r) _mm_prefetch(static_cast<const char*>(w[r]) + ahead + k * esize, _MM_HINT_T0);
    __m512 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = _mm512_loadu_ps(x[t] + k);
    for (int r = 0; r < R; ++r) {
      __m512 wv = LoadW<D>(w[r], k);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  if (k < a.K) {
    const __mmask16 m = (__mmask16)((1u << (a.K - k)) - 1);
    __m512 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = _mm512_maskz_loadu_ps(m, x[t] + k);
    for (int r = 0; r < R; ++r) {
      __m512 wv = LoadWMasked<D>(w[r], k, m);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    const float b = a.bias ? a.bias[n + r] : 0.0f;
    for (int t = 0; t < T; ++t) a.out[(t0 + t) * a.N + n + r] = _mm512_reduce_add_ps(acc[r][t]) + b;
  }
}

// One weight row, T activation rows: a single sequential stream per thread (DRAM prefetchers
// follow one stream far better than four interleaved ones), two accumulators per activation row
// to hide FMA latency, and a software prefetch a few rows ahead.
template <DType D, int T>
void DotRowStream(const MatMulArgs& a, int64_t n, int64_t t0) {
  constexpr int64_t esize = D == DType::kF32 ? 4 : 2;
  __m512 acc0[T], acc1[T];
  for (int t = 0; t < T; ++t) acc0[t] = acc1[t] = _mm512_setzero_ps();
  const void* w = WRow<D>(a, n);
  const char* ahead = static_cast<const char*>(w) + 4 * a.K * esize;
  const float* x[T];
  for (int t = 0; t < T; ++t) x[t] = a.x + (t0 + t) * a.K;
  int64_t k = 0;
  for (; k + 32 <= a.K; k += 32) {
    _mm_prefetch(ahead + k * esize, _MM_HINT_T0);
    if constexpr (esize == 4) _mm_prefetch(ahead + k * esize + 64, _MM_HINT_T0);
    const __m512 w0 = LoadW<D>(w, k), w1 = LoadW<D>(w, k + 16);
    for (int t = 0; t < T; ++t) {
      acc0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[t] + k), acc0[t]);
      acc1[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[t] + k + 16), acc1[t]);
    }
  }
  for (; k < a.K; k += 16) {
    const int64_t left = a.K - k;
    const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
    const __m512 wv = LoadWMasked<D>(w, k, m);
    for (int t = 0; t < T; ++t) acc0[t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x[t] + k), acc0[t]);
  }
  const float b = a.bias ? a.bias[n] : 0.0f;
  for (int t = 0; t < T; ++t)
    a.out[(t0 + t) * a.N + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[t], acc1[t])) + b;
}

// One or two tokens: the rows [n_begin, n_end) one after the other. Rows are contiguous, so this
// reads one sequential stream, which the hardware prefetchers follow at the full read bandwidth
// (bench/stream_bench, 2 threads, Qwen3-0.6B's matrices: 47.8 GB/s against 38.5 for 16
// interleaved row streams per tile and 46.1 for the plain read probe); four accumulators per
// token keep the FMA chain of one row off the critical path. Each token's sum is the same
// sequence of operations whatever T is, so a sequence decoded next to another one gets the same
// bits as alone.
// kPrefetch: a software prefetch four rows ahead. One token is faster without it (it fights the
// hardware prefetcher: 0.91x); two are faster with it (weights_pass_bench --tokens 2, alternating
// passes: 0.84 / 0.78 of the probe with / without).
template <DType D, int T, bool kPrefetch>
void DotRowsSeq(const MatMulArgs& a, int64_t n_begin, int64_t n_end, int64_t t0) {
  constexpr int64_t esize = D == DType::kF32 ? 4 : 2;
  const float* x[T];
  for (int t = 0; t < T; ++t) x[t] = a.x + (t0 + t) * a.K;
  for (int64_t n = n_begin; n < n_end; ++n) {
    const void* w = WRow<D>(a, n);
    const char* ahead = static_cast<const char*>(w) + 4 * a.K * esize;
    __m512 acc[T][4];
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 64 <= a.K; k += 64) {
      if constexpr (kPrefetch)
        for (int64_t b = 0; b < 64 * esize; b += 64)
          _mm_prefetch(ahead + k * esize + b, _MM_HINT_T0);
      const __m512 w0 = LoadW<D>(w, k), w1 = LoadW<D>(w, k + 16), w2 = LoadW<D>(w, k + 32),
                   w3 = LoadW<D>(w, k + 48);
      for (int t = 0; t < T; ++t) {
        acc[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[t] + k), acc[t][0]);
        acc[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[t] + k + 16), acc[t][1]);
        acc[t][2] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(x[t] + k + 32), acc[t][2]);
        acc[t][3] = _mm512_fmadd_ps(w3, _mm512_loadu_ps(x[t] + k + 48), acc[t][3]);
      }
    }
    for (; k < a.K; k += 16) {
      const int64_t left = a.K - k;
      const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
      const __m512 wv = LoadWMasked<D>(w, k, m);
      for (int t = 0; t < T; ++t)
        acc[t][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x[t] + k), acc[t][0]);
    }
    const float b = a.bias ? a.bias[n] : 0.0f;
    for (int t = 0; t < T; ++t)
      a.out[(t0 + t) * a.N + n] =
          _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]),
                                             _mm512_add_ps(acc[t][2], acc[t][3]))) +
          b;
  }
}

template <DType D, int T>
void DecodeRows(const MatMulArgs& a, int64_t n_begin, int64_t n_end, int64_t t0) {
  // One and two tokens: one sequential stream (DotRowsSeq). Two rows in 4-row tiles read
  // 0.72 of the probe against 0.81-0.84 (weights_pass_bench --tokens 2, alternating passes); from
  // three rows on the tiles' shared activation loads win (T = 3: 0.71-0.75 vs 0.66-0.68, T = 4:
  // 0.68-0.69 vs 0.54-0.63).
  // Five to eight rows (kDecodeMaxRows) still stream each weight byte once, in 4-row tiles up to
  // seven and 2-row ones for eight (4 x 8 accumulators spill; measured the same), where the
  // prefill path's f32 panels read 0.23-0.32 of the probe: T = 5 / 6 / 7 0.70 / 0.72 / 0.60,
  // T = 8 0.41 (2-row tiles; the row stream 0.35-0.37).
  if constexpr (T == 1) return DotRowsSeq<D, 1, false>(a, n_begin, n_end, t0);
  if constexpr (T == 2) return DotRowsSeq<D, 2, true>(a, n_begin, n_end, t0);
  constexpr int R = T <= 7 ? kRows : 2;
  int64_t n = n_begin;
  for (; n + R <= n_end; n += R) DotTile<D, R, T>(a, n, t0);
  for (; n < n_end; ++n) DotRowStream<D, T>(a, n, t0);
}

// More rows than decode, up to kTokenGroupMaxRows: each 4-row tile of weights (8-24 KB of bf16
// for K = 1024..3072, L1-resident after its first pass) dotted with the activation rows in groups
// of 6 (DotTile's registers: 24 accumulators), so the weights come from DRAM once and are
// converted per group in registers. weights_pass_bench --tokens T (bf16 weights, f32
// activations, alternating passes, fraction of the probe) against the f32 panels of Prefill:
// T = 9 0.19 -> 0.55, 12 0.19 -> 0.36, 16 0.15 -> 0.28, 24 0.12 -> 0.21, 64 0.070 -> 0.093, 128
// 0.037 -> 0.049, 256 0.026 -> 0.028 (groups of 4: 0.7-0.9x of groups of 6); at 512 (F16 pp512)
// the same. decode_batch_bench (bf16, decode rows stay f32 inside a step) --batch 12 / 16 / 32:
// 85 / 82 / 112 -> 131 / 133 / 140 tok/s.
constexpr int64_t kTokenGroupMaxRows = 256;
template <DType D>
void TokenGroupRows(const MatMulArgs& a, int64_t n_begin, int64_t n_end) {
  constexpr int kGroup = 6;
  int64_t n = n_begin;
  for (; n + kRows <= n_end; n += kRows) {
    int64_t t = 0;
    for (; t + kGroup <= a.T; t += kGroup) DotTile<D, kRows, kGroup>(a, n, t);
    WithConstant(std::integer_sequence<int, 1, 2, 3, 4, 5>{}, a.T - t,
                 [&](auto tt) { DotTile<D, kRows, tt()>(a, n, t); });
  }
  for (; n < n_end; ++n)
    for (int64_t t = 0; t < a.T; ++t) DotRowStream<D, 1>(a, n, t);
}

// Prefill tile: R f32 weight rows (scratch, stride kKc) x TT activation rows over [k0, k0+kc).
// Adds into out.
template <int R, int TT>
void PanelTile(const MatMulArgs& a, const float* wp, int64_t n, int64_t t0, int64_t k0, int64_t kc) {
  __m512 acc[R][TT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
  const float* x = a.x + t0 * a.K + k0;
  int64_t k = 0;
  for (; k + 16 <= kc; k += 16) {
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_ps(wp + r * kKc + k);
    for (int t = 0; t < TT; ++t) {
      __m512 xv = _mm512_loadu_ps(x + t * a.K + k);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  if (k < kc) {
    const __mmask16 m = (__mmask16)((1u << (kc - k)) - 1);
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_maskz_loadu_ps(m, wp + r * kKc + k);
    for (int t = 0; t < TT; ++t) {
      __m512 xv = _mm512_maskz_loadu_ps(m, x + t * a.K + k);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) a.out[(t0 + t) * a.N + n + r] += _mm512_reduce_add_ps(acc[r][t]);
}

template <int R>
void PanelAllRows(const MatMulArgs& a, const float* wp, int64_t n, int64_t k0, int64_t kc) {
  int64_t t = 0;
  for (; t + kTile <= a.T; t += kTile) PanelTile<R, kTile>(a, wp, n, t, k0, kc);
  switch (a.T - t) {
    case 5: PanelTile<R, 5>(a, wp, n, t, k0, kc); break;
    case 4: PanelTile<R, 4>(a, wp, n, t, k0, kc); break;
    case 3: PanelTile<R, 3>(a, wp, n, t, k0, kc); break;
    case 2: PanelTile<R, 2>(a, wp, n, t, k0, kc); break;
    case 1: PanelTile<R, 1>(a, wp, n, t, k0, kc); break;
    default: break;
  }
}

template <DType D>
void Prefill(const MatMulArgs& a, int64_t n_begin, int64_t n_end) {
  // Bias first, then every K block adds its partial sums.
  for (int64_t t = 0; t < a.T; ++t)
    for (int64_t n = n_begin; n < n_end; ++n) a.out[t * a.N + n] = a.bias ? a.bias[n] : 0.0f;
  alignas(64) static thread_local float panel[kRows * kKc];
  for (int64_t n = n_begin; n < n_end; n += kRows) {
    const int rows = (int)std::min<int64_t>(kRows, n_end - n);
    for (int64_t k0 = 0; k0 < a.K; k0 += kKc) {
      const int64_t kc = std::min(kKc, a.K - k0);
      for (int r = 0; r < rows; ++r) {
        const void* w = WRow<D>(a, n + r);
        int64_t k = 0;
        for (; k + 16 <= kc; k += 16) _mm512_storeu_ps(panel + r * kKc + k, LoadW<D>(w, k0 + k));
        if (k < kc) {
          const __mmask16 m = (__mmask16)((1u << (kc - k)) - 1);
          _mm512_mask_storeu_ps(panel + r * kKc + k, m, LoadWMasked<D>(w, k0 + k, m));
        }
      }
      switch (rows) {
        case 4: PanelAllRows<4>(a, panel, n, k0, kc); break;
        case 3: PanelAllRows<3>(a, panel, n, k0, kc); break;
        case 2: PanelAllRows<2>(a, panel, n, k0, kc); break;
        default: PanelAllRows<1>(a, panel, n, k0, kc); break;
      }
    }
  }
}

template <DType D>
void Run(const MatMulArgs& a, int64_t n_begin, int64_t n_end) {
  if (WithConstant(DecodeRowCounts{}, a.T,
                   [&](auto t) { DecodeRows<D, t()>(a, n_begin, n_end, 0); }))
    return;
  if (a.T <= kTokenGroupMaxRows) return TokenGroupRows<D>(a, n_begin, n_end);
  Prefill<D>(a, n_begin, n_end);
}

}  // namespace

void MatMulAvx512(const MatMulArgs& a, int64_t n_begin, int64_t n_end) {
  switch (a.w_dtype) {
    case DType::kF32: Run<DType::kF32>(a, n_begin, n_end); return;
    case DType::kBF16: Run<DType::kBF16>(a, n_begin, n_end); return;
    case DType::kF16: Run<DType::kF16>(a, n_begin, n_end); return;
    default: MatMulGeneric(a, n_begin, n_end); return;
  }
}

}  // namespace petrel::kernels::cpu
