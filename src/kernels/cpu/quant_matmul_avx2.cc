// AVX2 quantized matmul (fallback for CPUs without AVX-512 VNNI; see quant_matmul.h). Same panel
// scheme as the AVX-512 kernel with one 32-block per 256-bit op. The integer dot is
// _mm256_maddubs_epi16 (unsigned x signed bytes, pairwise int16 sums) + _mm256_madd_epi16: direct
// for 4-bit codes (2 * 15 * 127 fits int16); 8-bit codes are made signed (s = u - 128, offset
// c += 128 dw) and multiplied as |s| x sign(q, s) so a pair sum stays below 2 * 128 * 127.
#include <immintrin.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "core/quant_blocks.h"
#include "kernels/cpu/quant_matmul.h"

namespace petrel::kernels::cpu {

namespace {

constexpr int64_t kTokenChunk = 64;

struct Panel {
  int64_t nb = 0;
  uint8_t* u = nullptr;   // [kPanelRows, nb * 32] codes: unsigned (4-bit) or signed (8-bit)
  float* wexp = nullptr;  // [kPanelRows, nb * 8]
  float* c = nullptr;     // [kPanelRows, nb]
};

template <DType D>
constexpr bool kEightBit = D == DType::kQ8_0 || D == DType::kQ8_A;

template <DType D>
void UnpackRow(const void* w, int64_t nb_real, const Panel& p, int r) {
  uint8_t* u = p.u + r * p.nb * 32;
  float* wexp = p.wexp + r * p.nb * 8;
  float* c = p.c + r * p.nb;
  const __m256i k80 = _mm256_set1_epi8((char)0x80);
  const __m128i k0f = _mm_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb_real; ++b) {
    float d, off;
    if constexpr (D == DType::kQ8_0) {  // already signed: w = d * q
      const auto& blk = static_cast<const quant::BlockQ8_0*>(w)[b];
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + b * 32),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.q)));
      d = _cvtsh_ss(blk.d);
      off = 0.0f;
    } else if constexpr (D == DType::kQ8_A) {  // w = d * u + m = d * (u - 128) + (m + 128 d)
      const auto& blk = static_cast<const quant::BlockQ8_A*>(w)[b];
      __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.q));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + b * 32), _mm256_xor_si256(q, k80));
      d = _cvtsh_ss(blk.d);
      off = _cvtsh_ss(blk.m) + 128.0f * d;
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
  for (int64_t b = nb_real; b < p.nb; ++b) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + b * 32), _mm256_setzero_si256());
    _mm256_storeu_ps(wexp + b * 8, _mm256_setzero_ps());
    c[b] = 0;
  }
}

inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float OffsetDot(const float* c, const float* ds, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= n; b += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(c + b), _mm256_loadu_ps(ds + b), acc);
  float s = Hsum(acc);
  for (; b < n; ++b) s += c[b] * ds[b];
  return s;
}

// int32 lanes of the dot of 32 weight codes with 32 int8 activations.
template <DType D>
inline __m256i Dot(__m256i w, __m256i x, __m256i ones16) {
  __m256i p;
  if constexpr (kEightBit<D>) {
    p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  } else {
    p = _mm256_maddubs_epi16(w, x);
  }
  return _mm256_madd_epi16(p, ones16);
}

template <DType D, int R, int TT>
void Tile(const MatMulArgs& m, const QuantActs& a, const Panel& p, int64_t n, int64_t t0) {
  __m256 acc[R][TT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_setzero_ps();
  const int64_t nb = p.nb;
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int64_t j = 0; j < nb; ++j) {
    __m256i w[R];
    for (int r = 0; r < R; ++r) w[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.u + r * nb * 32 + j * 32));
    for (int t = 0; t < TT; ++t) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + (t0 + t) * nb * 32 + j * 32));
      const __m256 xs = _mm256_loadu_ps(a.dexp + (t0 + t) * nb * 8 + j * 8);
      for (int r = 0; r < R; ++r) {
        const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(Dot<D>(w[r], xv, ones16)), xs);
        acc[r][t] = _mm256_fmadd_ps(f, _mm256_loadu_ps(p.wexp + r * nb * 8 + j * 8), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const float bias = m.bias ? m.bias[n + r] : 0.0f;
    for (int t = 0; t < TT; ++t)
      m.out[(t0 + t) * m.N + n + r] =
          Hsum(acc[r][t]) + OffsetDot(p.c + r * nb, a.ds + (t0 + t) * nb, nb) + bias;
  }
}

template <DType D, int R>
void TokenTiles(const MatMulArgs& m, const QuantActs& a, const Panel& p, int64_t n, int64_t t_begin,
                int64_t t_end) {
  int64_t t = t_begin;
  for (; t + 2 <= t_end; t += 2) Tile<D, R, 2>(m, a, p, n, t);
  if (t < t_end) Tile<D, R, 1>(m, a, p, n, t);
}

// Decode rows (T <= kDecodeMaxRows) straight from the blocks, the weight rows one after the
// other (one stream per thread) and each block loaded once for all T rows: per block and token
// one maddubs + madd (4-bit: the codes 0..15 x int8 activations; 8-bit: |s| x sign(x, s) of the
// signed codes s, as ggml's AVX2 dot products do) and one fma by d dx; the block's offset (as
// UnpackRow's: Q4_0 -8 d, Q4_1 m, Q8_A m + 128 d) times dx sum(q) is added per row at the end.
// The panels below unpack every row first, which bounds decode by the unpacking.
// weights_pass_bench PETREL_ISA=avx2 (on the AVX-512 VM; alternating passes, fraction of the
// probe), panels -> direct: Q8_0 T = 1 / 2 / 4 / 8 0.39 / 0.26 / 0.15 / 0.12 -> 0.70 / 0.54 / 0.32
// / 0.25; Q4_0 0.25 / 0.16 / 0.11 / 0.069 -> 0.36 / 0.29 / 0.15 / 0.074.
template <DType D, int T>
void DirectRows(const MatMulArgs& m, const QuantActs& a, int64_t n_begin, int64_t n_end) {
  const int64_t nb = m.K / quant::kBlock;
  const size_t row_bytes = DTypeBytes(D, m.K);
  const __m128i lo4 = _mm_set1_epi8(0x0F);
  const __m256i k80 = _mm256_set1_epi8((char)0x80);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t n = n_begin; n < n_end; ++n) {
    const char* row = static_cast<const char*>(m.w) + n * row_bytes;
    __m256 acc[T];
    float off_sum[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps(), off_sum[t] = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      __m256i wa, ws = _mm256_setzero_si256();  // unsigned factors; 8-bit: the signed codes
      float d, off;
      if constexpr (kEightBit<D>) {
        if constexpr (D == DType::kQ8_0) {
          const auto* blk = reinterpret_cast<const quant::BlockQ8_0*>(row) + b;
          ws = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->q));
          d = _cvtsh_ss(blk->d);
          off = 0.0f;
        } else {
          const auto* blk = reinterpret_cast<const quant::BlockQ8_A*>(row) + b;
          ws = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->q)), k80);
          d = _cvtsh_ss(blk->d);
          off = _cvtsh_ss(blk->m) + 128.0f * d;
        }
        wa = _mm256_sign_epi8(ws, ws);
      } else {
        const uint8_t* qs;
        if constexpr (D == DType::kQ4_0) {
          const auto* blk = reinterpret_cast<const quant::BlockQ4_0*>(row) + b;
          qs = blk->q;
          d = _cvtsh_ss(blk->d);
          off = -8.0f * d;
        } else {
          const auto* blk = reinterpret_cast<const quant::BlockQ4_1*>(row) + b;
          qs = blk->q;
          d = _cvtsh_ss(blk->d);
          off = _cvtsh_ss(blk->m);
        }
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
        wa = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), lo4), _mm_and_si128(raw, lo4));
      }
      for (int t = 0; t < T; ++t) {
        __m256i xv =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + (t * a.nb + b) * 32));
        if constexpr (kEightBit<D>) xv = _mm256_sign_epi8(xv, ws);
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wa, xv), ones);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                 _mm256_set1_ps(d * a.dexp[(t * a.nb + b) * 8]), acc[t]);
        off_sum[t] += off * a.ds[t * a.nb + b];
      }
    }
    const float bias = m.bias ? m.bias[n] : 0.0f;
    for (int t = 0; t < T; ++t) m.out[t * m.N + n] = Hsum(acc[t]) + off_sum[t] + bias;
  }
}

template <DType D>
void Run(const MatMulArgs& m, const QuantActs& a, int64_t n_begin, int64_t n_end) {
  if (WithConstant(DecodeRowCounts{}, m.T,
                   [&](auto t) { DirectRows<D, t()>(m, a, n_begin, n_end); }))
    return;
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
        case 4: TokenTiles<D, 4>(m, a, p, n, t0, t1); break;
        case 3: TokenTiles<D, 3>(m, a, p, n, t0, t1); break;
        case 2: TokenTiles<D, 2>(m, a, p, n, t0, t1); break;
        default: TokenTiles<D, 1>(m, a, p, n, t0, t1); break;
      }
    }
  }
}

}  // namespace

void QuantMatMulAvx2(const MatMulArgs& m, const QuantActs& a, int64_t n_begin, int64_t n_end) {
  switch (m.w_dtype) {
    case DType::kQ8_0: Run<DType::kQ8_0>(m, a, n_begin, n_end); return;
    case DType::kQ4_0: Run<DType::kQ4_0>(m, a, n_begin, n_end); return;
    case DType::kQ4_1: Run<DType::kQ4_1>(m, a, n_begin, n_end); return;
    case DType::kQ8_A: Run<DType::kQ8_A>(m, a, n_begin, n_end); return;
    default: QuantMatMulGeneric(m, a, n_begin, n_end); return;
  }
}

}  // namespace petrel::kernels::cpu
