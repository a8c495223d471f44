// AVX-512 VNNI quantized matmul (see quant_matmul.h for the method). A panel of 4 weight rows is
// unpacked to unsigned codes (L1-resident), then a register tile of 4 rows x up to 4 tokens runs
// over pairs of 32-blocks: one 512-bit vpdpbusd per (row, token, block pair) gives 16 int32 lanes
// (8 per block), converted to f32 and scaled lane-wise by dx (activations) and dw (weights) — both
// stored repeated 8x per block, so no shuffles are needed. Decode (T <= 4) reads each weight byte
// once; prefill takes 64 tokens at a time (their int8 rows stay in L2) and reuses each unpacked
// panel across them. Compiled with -mavx512f/bw/vl/dq/vnni + F16C; chosen at run time.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/quant_blocks.h"
#include "kernels/cpu/quant_matmul.h"

namespace petrel::kernels::cpu {

namespace {

constexpr int64_t kTokenChunk = 64;

struct Panel {
  int64_t nb = 0;        // blocks per row, even (padding blocks are zero)
  uint8_t* u = nullptr;  // [kPanelRows, nb * 32] unsigned codes
  float* wexp = nullptr; // [kPanelRows, nb * 8]  dw repeated 8x
  float* c = nullptr;    // [kPanelRows, nb]      offset: w = dw * u + c
};

template <DType D>
void UnpackRow(const void* w, int64_t nb_real, const Panel& p, int r) {
  uint8_t* u = p.u + r * p.nb * 32;
  float* wexp = p.wexp + r * p.nb * 8;
  float* c = p.c + r * p.nb;
  const __m256i k80 = _mm256_set1_epi8((char)0x80);
  const __m128i k0f = _mm_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb_real; ++b) {
    float d, off;
    if constexpr (D == DType::kQ8_0) {
      const auto& blk = static_cast<const quant::BlockQ8_0*>(w)[b];
      __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.q));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + b * 32), _mm256_xor_si256(q, k80));
      d = _cvtsh_ss(blk.d);
      off = -128.0f * d;
    } else if constexpr (D == DType::kQ8_A) {
      const auto& blk = static_cast<const quant::BlockQ8_A*>(w)[b];
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + b * 32),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.q)));
      d = _cvtsh_ss(blk.d);
      off = _cvtsh_ss(blk.m);
    } else {
      const uint8_t* qs;
      if constexpr (D == DType::kQ4_0) {
        const auto& blk = static_cast<const quant::BlockQ4_0*>(w)[b];
        qs = blk.q;
        d = _cvtsh_ss(blk.d);
        off = -8.0f * d;
      } else {
        const auto& blk = static_cast<const quant::BlockQ4_1*>(w)[b];
        qs = blk.q;
        d = _cvtsh_ss(blk.d);
        off = _cvtsh_ss(blk.m);
      }
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(u + b * 32), _mm_and_si128(raw, k0f));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(u + b * 32 + 16),
                       _mm_and_si128(_mm_srli_epi16(raw, 4), k0f));
    }
    _mm256_storeu_ps(wexp + b * 8, _mm256_set1_ps(d));
    c[b] = off;
  }
  for (int64_t b = nb_real; b < p.nb; ++b) {  // padding block
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + b * 32), _mm256_setzero_si256());
    _mm256_storeu_ps(wexp + b * 8, _mm256_setzero_ps());
    c[b] = 0;
  }
}

// sum_b c[b] * ds[b] over n (even) blocks.
inline float OffsetDot(const float* c, const float* ds, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 16 <= n; b += 16)
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(c + b), _mm512_loadu_ps(ds + b), acc);
  if (b < n) {
    const __mmask16 m = (__mmask16)((1u << (n - b)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, c + b), _mm512_maskz_loadu_ps(m, ds + b), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// R panel rows x TT tokens starting at t0; writes out[t0 .. t0+TT, n .. n+R].
template <int R, int TT>
void Tile(const MatMulArgs& m, const QuantActs& a, const Panel& p, int64_t n, int64_t t0) {
  __m512 acc[R][TT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
  const int64_t nb = p.nb;
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t j = 0; j < nb; j += 2) {
    __m512i w[R];
    __m512 ws[R];
    for (int r = 0; r < R; ++r) {
      w[r] = _mm512_loadu_si512(p.u + r * nb * 32 + j * 32);
      ws[r] = _mm512_loadu_ps(p.wexp + r * nb * 8 + j * 8);
    }
    for (int t = 0; t < TT; ++t) {
      const __m512i xv = _mm512_loadu_si512(a.q + (t0 + t) * nb * 32 + j * 32);
      const __m512 xs = _mm512_loadu_ps(a.dexp + (t0 + t) * nb * 8 + j * 8);
      for (int r = 0; r < R; ++r) {
        const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, w[r], xv)), xs);
        acc[r][t] = _mm512_fmadd_ps(f, ws[r], acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const float bias = m.bias ? m.bias[n + r] : 0.0f;
    for (int t = 0; t < TT; ++t)
      m.out[(t0 + t) * m.N + n + r] = _mm512_reduce_add_ps(acc[r][t]) +
                                      OffsetDot(p.c + r * nb, a.ds + (t0 + t) * nb, nb) + bias;
  }
}

template <int R>
void TokenTiles(const MatMulArgs& m, const QuantActs& a, const Panel& p, int64_t n, int64_t t_begin,
                int64_t t_end) {
  int64_t t = t_begin;
  for (; t + 4 <= t_end; t += 4) Tile<R, 4>(m, a, p, n, t);
  switch (t_end - t) {
    case 3: Tile<R, 3>(m, a, p, n, t); break;
    case 2: Tile<R, 2>(m, a, p, n, t); break;
    case 1: Tile<R, 1>(m, a, p, n, t); break;
    default: break;
  }
}

template <DType D>
void Run(const MatMulArgs& m, const QuantActs& a, int64_t n_begin, int64_t n_end) {
  const int64_t nb_real = m.K / quant::kBlock;
  const size_t row_bytes = DTypeBytes(D, m.K);
  thread_local std::vector<uint8_t> u_buf;
  thread_local std::vector<float> f_buf;
  Panel p;
  p.nb = a.nb;
  u_buf.resize((size_t)(kPanelRows * p.nb * 32));
  f_buf.resize((size_t)(kPanelRows * p.nb * 9));
  p.u = u_buf.data();
  p.wexp = f_buf.data();
  p.c = f_buf.data() + kPanelRows * p.nb * 8;
  for (int64_t t0 = 0; t0 < m.T; t0 += kTokenChunk) {
    const int64_t t1 = std::min(m.T, t0 + kTokenChunk);
    for (int64_t n = n_begin; n < n_end; n += kPanelRows) {
      const int rows = (int)std::min<int64_t>(kPanelRows, n_end - n);
      for (int r = 0; r < rows; ++r)
        UnpackRow<D>(static_cast<const char*>(m.w) + (n + r) * row_bytes, nb_real, p, r);
      switch (rows) {
        case 4: TokenTiles<4>(m, a, p, n, t0, t1); break;
        case 3: TokenTiles<3>(m, a, p, n, t0, t1); break;
        case 2: TokenTiles<2>(m, a, p, n, t0, t1); break;
        default: TokenTiles<1>(m, a, p, n, t0, t1); break;
      }
    }
  }
}

}  // namespace

void QuantizeActsAvx512(const float* x, QuantActs& a, int64_t t_begin, int64_t t_end) {
  const int64_t K = a.K, nb_real = K / quant::kBlock;
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t t = t_begin; t < t_end; ++t) {
    const float* xr = x + t * K;
    int8_t* q = a.q + t * a.nb * quant::kBlock;
    float* dexp = a.dexp + t * a.nb * 8;
    float* ds = a.ds + t * a.nb;
    int32_t* qsum = a.qsum ? a.qsum + t * a.nb : nullptr;
    for (int64_t b = 0; b < nb_real; ++b) {
      const __m512 v0 = _mm512_loadu_ps(xr + b * 32), v1 = _mm512_loadu_ps(xr + b * 32 + 16);
      const float amax = _mm512_reduce_max_ps(
          _mm512_max_ps(_mm512_and_ps(v0, abs_mask), _mm512_and_ps(v1, abs_mask)));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const __m512 vid = _mm512_set1_ps(id);
      // cvtps_epi32 rounds to nearest even (the default MXCSR mode), as nearbyint does.
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32), _mm512_cvtepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32 + 16), _mm512_cvtepi32_epi8(q1));
      const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
      _mm256_storeu_ps(dexp + b * 8, _mm256_set1_ps(d));
      ds[b] = d * (float)sum;
      if (qsum) qsum[b] = sum;
    }
    for (int64_t b = nb_real; b < a.nb; ++b) {  // padding block
      std::memset(q + b * 32, 0, 32);
      _mm256_storeu_ps(dexp + b * 8, _mm256_setzero_ps());
      ds[b] = 0;
      if (qsum) qsum[b] = 0;
    }
  }
}

void QuantMatMulAvx512(const MatMulArgs& m, const QuantActs& a, int64_t n_begin, int64_t n_end) {
  switch (m.w_dtype) {
    case DType::kQ8_0: Run<DType::kQ8_0>(m, a, n_begin, n_end); return;
    case DType::kQ4_0: Run<DType::kQ4_0>(m, a, n_begin, n_end); return;
    case DType::kQ4_1: Run<DType::kQ4_1>(m, a, n_begin, n_end); return;
    case DType::kQ8_A: Run<DType::kQ8_A>(m, a, n_begin, n_end); return;
    default: QuantMatMulGeneric(m, a, n_begin, n_end); return;
  }
}

}  // namespace petrel::kernels::cpu
