// bf16-activation GEMM with AVX512_BF16 vdpbf16ps; see matmul_bf16.h for the method. Compiled
// with the AVX-512 flags (cmake/CpuVariants.cmake), called only where the CPU has AVX512_BF16.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/matmul_bf16.h"

namespace petrel::kernels::cpu {

namespace {

constexpr int kTileRows = 6;   // activation rows per register tile
constexpr int kVecs = 4;       // zmm column groups per tile: 4 x 16 = kBf16PanelCols
constexpr int64_t kKcPairs = 1536;  // K block (pairs) of a packed panel: 64 cols x 3072 k = 384 KiB (L2)
static_assert(kVecs * 16 == kBf16PanelCols);

// In-place transpose of a 16 x 16 matrix of 32-bit words held one row per register (three rounds
// of unpack / 128-bit shuffles).
inline void Transpose16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);      // per 128-bit lane l: rows i, i+1, cols 4l, 4l+1
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);  //                     cols 4l+2, 4l+3
  }
  for (int g = 0; g < 4; ++g) {  // u[4g + c], lane l: rows 4g..4g+3 at column 4l + c
    u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);  // lanes 0, 2 of each
    const __m512i v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);  // lanes 1, 3
    const __m512i w0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
    const __m512i w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_i32x4(v0, w0, 0x88);
    r[8 + c] = _mm512_shuffle_i32x4(v0, w0, 0xdd);
    r[4 + c] = _mm512_shuffle_i32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(v1, w1, 0xdd);
  }
}

// Packs weight rows (output columns) [n0, n0 + 64) over pairs [p0, p0 + np) into dst[np][64]:
// word (p, c) = (W[n0 + c][2(p0 + p)], W[n0 + c][2(p0 + p) + 1]). Rows at or past n_end, and the
// element past an odd K, are zero.
void PackPanel(const uint16_t* w, int64_t K, int64_t n0, int64_t n_end, int64_t p0, int64_t np,
               uint32_t* dst) {
  for (int g = 0; g < kVecs; ++g) {
    for (int64_t pp = 0; pp < np; pp += 16) {
      const int64_t k = 2 * (p0 + pp);
      const int64_t left = K - k;  // >= 1
      const __mmask32 m = left >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << left) - 1);
      __m512i r[16];
      for (int i = 0; i < 16; ++i) {
        const int64_t n = n0 + 16 * g + i;
        r[i] = n < n_end ? _mm512_maskz_loadu_epi16(m, w + n * K + k) : _mm512_setzero_si512();
      }
      Transpose16x16(r);
      const int64_t cnt = std::min<int64_t>(16, np - pp);
      for (int64_t j = 0; j < cnt; ++j) _mm512_storeu_si512(dst + (pp + j) * kBf16PanelCols + 16 * g, r[j]);
    }
  }
}

inline __m512bh AsBh(__m512i v) { return (__m512bh)v; }

// TT activation rows x 64 columns over np pairs of a packed panel. out points at (row 0, column 0)
// of the tile; the first K block stores (plus bias), later ones add.
template <int TT>
void Tile(const uint32_t* xp, int64_t pairs, const uint32_t* panel, int64_t np, float* out,
          int64_t ldo, int ncols, bool accumulate, const float* bias) {
  __m512 acc[TT][kVecs];
  for (int t = 0; t < TT; ++t)
    for (int j = 0; j < kVecs; ++j) acc[t][j] = _mm512_setzero_ps();
  for (int64_t p = 0; p < np; ++p) {
    const uint32_t* b = panel + p * kBf16PanelCols;
    __m512i bv[kVecs];
    for (int j = 0; j < kVecs; ++j) bv[j] = _mm512_loadu_si512(b + 16 * j);
    for (int t = 0; t < TT; ++t) {
      const __m512i av = _mm512_set1_epi32((int)xp[t * pairs + p]);
      for (int j = 0; j < kVecs; ++j) acc[t][j] = _mm512_dpbf16_ps(acc[t][j], AsBh(av), AsBh(bv[j]));
    }
  }
  for (int j = 0; j < kVecs; ++j) {
    const int left = ncols - 16 * j;
    if (left <= 0) break;
    const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
    const __m512 bj = bias && !accumulate ? _mm512_maskz_loadu_ps(m, bias + 16 * j) : _mm512_setzero_ps();
    for (int t = 0; t < TT; ++t) {
      float* o = out + t * ldo + 16 * j;
      const __m512 base = accumulate ? _mm512_maskz_loadu_ps(m, o) : bj;
      _mm512_mask_storeu_ps(o, m, _mm512_add_ps(acc[t][j], base));
    }
  }
}

}  // namespace

void ConvertRowsToBf16Avx512(const float* x, int64_t K, uint32_t* xp, int64_t t_begin, int64_t t_end) {
  const int64_t pairs = Bf16Pairs(K);
  for (int64_t t = t_begin; t < t_end; ++t) {
    const float* s = x + t * K;
    uint32_t* d = xp + t * pairs;
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + k + 16), _mm512_loadu_ps(s + k));
      _mm512_storeu_si512(d + k / 2, (__m512i)v);
    }
    if (k < K) {
      const int64_t left = K - k;  // 1..31
      const __mmask16 lo = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
      const __mmask16 hi = left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : (__mmask16)0;
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, s + k + 16), _mm512_maskz_loadu_ps(lo, s + k));
      _mm512_mask_storeu_epi32(d + k / 2, (__mmask16)((1u << ((left + 1) / 2)) - 1), (__m512i)v);
    }
  }
}

void MatMulBf16ActAvx512(const MatMulArgs& a, const uint32_t* xp, int64_t n_begin, int64_t n_end) {
  const int64_t pairs = Bf16Pairs(a.K);
  const uint16_t* w = static_cast<const uint16_t*>(a.w);
  static thread_local std::vector<uint32_t> panel_buf;
  panel_buf.resize((size_t)std::min(kKcPairs, pairs) * kBf16PanelCols);
  uint32_t* panel = panel_buf.data();
  for (int64_t n0 = n_begin; n0 < n_end; n0 += kBf16PanelCols) {
    const int ncols = (int)std::min(kBf16PanelCols, n_end - n0);
    const float* bias = a.bias ? a.bias + n0 : nullptr;
    for (int64_t p0 = 0; p0 < pairs; p0 += kKcPairs) {
      const int64_t np = std::min(kKcPairs, pairs - p0);
      PackPanel(w, a.K, n0, n_end, p0, np, panel);
      const bool accumulate = p0 > 0;
      int64_t t = 0;
      for (; t + kTileRows <= a.T; t += kTileRows)
        Tile<kTileRows>(xp + t * pairs + p0, pairs, panel, np, a.out + t * a.N + n0, a.N, ncols, accumulate, bias);
      const uint32_t* x = xp + t * pairs + p0;
      float* o = a.out + t * a.N + n0;
      switch (a.T - t) {
        case 5: Tile<5>(x, pairs, panel, np, o, a.N, ncols, accumulate, bias); break;
        case 4: Tile<4>(x, pairs, panel, np, o, a.N, ncols, accumulate, bias); break;
        case 3: Tile<3>(x, pairs, panel, np, o, a.N, ncols, accumulate, bias); break;
        case 2: Tile<2>(x, pairs, panel, np, o, a.N, ncols, accumulate, bias); break;
        case 1: Tile<1>(x, pairs, panel, np, o, a.N, ncols, accumulate, bias); break;
        default: break;
      }
    }
  }
}

}  // namespace petrel::kernels::cpu
