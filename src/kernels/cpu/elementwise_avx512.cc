// AVX-512 elementwise kernels (elementwise.h), compiled with the AVX-512 flags.
#include <immintrin.h>

#include <cmath>

#include "core/dtype.h"

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/simd_exp_avx512.h"

namespace petrel::kernels::cpu {

void SiluMulAvx512(const float* gate, const float* up, float* out, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, Exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(s, _mm512_loadu_ps(up + i)));
  }
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, Exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

// No FMA contraction (this file is compiled with FMA available): the tail's x * x + ss must
// round twice, as in the backend's generic build.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
void RmsNormRowAvx512(const float* x, const float* w, float* out, int64_t d, float eps) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    acc = _mm512_add_ps(acc, _mm512_mul_ps(v, v));  // not an FMA: the scalar loop's rounding
  }
  float ss = 0;
  for (; i < d; ++i) ss += x[i] * x[i];
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  for (int j = 0; j < 16; ++j) ss += lanes[j];
  const float inv = 1.0f / std::sqrt(ss / (float)d + eps);
  const __m512 vinv = _mm512_set1_ps(inv);
  int64_t k = 0;
  for (; k + 16 <= d; k += 16)
    _mm512_storeu_ps(out + k, _mm512_mul_ps(_mm512_loadu_ps(w + k),
                                            _mm512_mul_ps(_mm512_loadu_ps(x + k), vinv)));
  for (; k < d; ++k) out[k] = w[k] * (x[k] * inv);
}
#pragma GCC pop_options

void F32ToBF16Avx512(const float* src, uint16_t* dst, int64_t n) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
  const __m512i quiet = _mm512_set1_epi32(0x40);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i x = _mm512_castps_si512(_mm512_loadu_ps(src + i));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, abs_mask), inf);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), one);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(bias, lsb)), 16);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(x, 16), quiet);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(r));
  }
  for (; i < n; ++i) dst[i] = F32ToBF16(src[i]);
}

}  // namespace petrel::kernels::cpu
