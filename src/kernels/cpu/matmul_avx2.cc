// AVX2 + FMA matmul (fallback for CPUs without AVX-512), weights converted in registers. Decode
// (T <= kDecodeMaxRows): each weight row dotted with all T activation rows, the rows one after the
// other (RowsSeq). Longer: 4 weight rows x up to 4 activation rows per register tile, the
// activation rows taken four at a time over 64-row blocks; the weight rows (a few KB) are then
// re-read from L1/L2, not from memory.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/matmul.h"

namespace petrel::kernels::cpu {

namespace {

template <DType D>
inline __m256 LoadW8(const void* base, int64_t idx) {
  if constexpr (D == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + idx);
  } else if constexpr (D == DType::kBF16) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + idx));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + idx));
    return _mm256_cvtph_ps(h);
  }
}

template <DType D>
inline float LoadW1(const void* base, int64_t idx) {
  if constexpr (D == DType::kF32) return static_cast<const float*>(base)[idx];
  else if constexpr (D == DType::kBF16) return BF16ToF32(static_cast<const uint16_t*>(base)[idx]);
  else return F16ToF32(static_cast<const uint16_t*>(base)[idx]);
}

inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <DType D, int R, int T>
void DotTile(const MatMulArgs& a, int64_t n, int64_t t0) {
  constexpr int64_t esize = D == DType::kF32 ? 4 : 2;
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  const void* w[R];
  for (int r = 0; r < R; ++r) w[r] = static_cast<const char*>(a.w) + (n + r) * a.K * esize;
  const float* x[T];
  for (int t = 0; t < T; ++t) x[t] = a.x + (t0 + t) * a.K;
  int64_t k = 0;
  for (; k + 8 <= a.K; k += 8) {
    __m256 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x[t] + k);
    for (int r = 0; r < R; ++r) {
      __m256 wv = LoadW8<D>(w[r], k);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      float s = Hsum(acc[r][t]);
      for (int64_t kk = k; kk < a.K; ++kk) s += LoadW1<D>(w[r], kk) * x[t][kk];
      a.out[(t0 + t) * a.N + n + r] = s + (a.bias ? a.bias[n + r] : 0.0f);
    }
  }
}

// Activation rows [t0, t0 + T) against the weight rows one after the other (one sequential
// stream per thread, which the hardware prefetchers follow), A accumulators per activation row.
template <DType D, int T, int A, bool kPrefetch>
void RowsSeq(const MatMulArgs& a, int64_t n_begin, int64_t n_end, int64_t t0) {
  constexpr int64_t esize = D == DType::kF32 ? 4 : 2;
  const float* x[T];
  for (int t = 0; t < T; ++t) x[t] = a.x + (t0 + t) * a.K;
  for (int64_t n = n_begin; n < n_end; ++n) {
    const void* w = static_cast<const char*>(a.w) + n * a.K * esize;
    const char* ahead = static_cast<const char*>(w) + 4 * a.K * esize;
    __m256 acc[T][A];
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < A; ++i) acc[t][i] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 * A <= a.K; k += 8 * A) {
      if constexpr (kPrefetch)
        for (int64_t b = 0; b < 8 * A * esize; b += 64)
          _mm_prefetch(ahead + k * esize + b, _MM_HINT_T0);
      __m256 wv[A];
      for (int i = 0; i < A; ++i) wv[i] = LoadW8<D>(w, k + 8 * i);
      for (int t = 0; t < T; ++t)
        for (int i = 0; i < A; ++i)
          acc[t][i] = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(x[t] + k + 8 * i), acc[t][i]);
    }
    for (; k + 8 <= a.K; k += 8) {
      const __m256 wv = LoadW8<D>(w, k);
      for (int t = 0; t < T; ++t)
        acc[t][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[t] + k), acc[t][0]);
    }
    const float b = a.bias ? a.bias[n] : 0.0f;
    for (int t = 0; t < T; ++t) {
      __m256 sum = acc[t][0];
      for (int i = 1; i < A; ++i) sum = _mm256_add_ps(sum, acc[t][i]);
      float s = Hsum(sum);
      for (int64_t kk = k; kk < a.K; ++kk) s += LoadW1<D>(w, kk) * x[t][kk];
      a.out[(t0 + t) * a.N + n] = s + b;
    }
  }
}

template <DType D, int T>
void Rows(const MatMulArgs& a, int64_t n_begin, int64_t n_end, int64_t t0) {
  int64_t n = n_begin;
  for (; n + 4 <= n_end; n += 4) DotTile<D, 4, T>(a, n, t0);
  for (; n < n_end; ++n) DotTile<D, 1, T>(a, n, t0);
}

template <DType D>
void Run(const MatMulArgs& a, int64_t n_begin, int64_t n_end) {
  // Decode rows (kDecodeMaxRows): one pass of the weights as one stream per thread, where the
  // 4 x 4 tiles below (16 accumulators: all of AVX2's registers) read 0.29-0.57 of the probe.
  // weights_pass_bench --tokens T, bf16, PETREL_ISA=avx2 on the AVX-512 VM, alternating passes:
  // T = 1 0.57 -> 0.93, 2 0.47 -> 0.84, 3 0.52 -> 0.78, 4 0.46 -> 0.66, 6 0.42 -> 0.48 (two
  // accumulators a row; one: 0.34), 8 0.29 -> 0.33.
  // Accumulators a row: 4 for 1-2 rows, 2 for 3-6, 1 for 7-8; a prefetch from two rows on.
  if (WithConstant(DecodeRowCounts{}, a.T, [&](auto t) {
        constexpr int kAcc = t() <= 2 ? 4 : t() <= 6 ? 2 : 1;
        RowsSeq<D, t(), kAcc, (t() >= 2)>(a, n_begin, n_end, 0);
      }))
    return;
  // Column blocks of 64 rows keep the weights cache-resident while all T rows pass over them.
  for (int64_t nb = n_begin; nb < n_end; nb += 64) {
    const int64_t ne = std::min(n_end, nb + 64);
    int64_t t = 0;
    for (; t + 4 <= a.T; t += 4) Rows<D, 4>(a, nb, ne, t);
    switch (a.T - t) {
      case 3: Rows<D, 3>(a, nb, ne, t); break;
      case 2: Rows<D, 2>(a, nb, ne, t); break;
      case 1: Rows<D, 1>(a, nb, ne, t); break;
      default: break;
    }
  }
}

}  // namespace

void MatMulAvx2(const MatMulArgs& a, int64_t n_begin, int64_t n_end) {
  switch (a.w_dtype) {
    case DType::kF32: Run<DType::kF32>(a, n_begin, n_end); return;
    case DType::kBF16: Run<DType::kBF16>(a, n_begin, n_end); return;
    case DType::kF16: Run<DType::kF16>(a, n_begin, n_end); return;
    default: MatMulGeneric(a, n_begin, n_end); return;
  }
}

}  // namespace petrel::kernels::cpu
