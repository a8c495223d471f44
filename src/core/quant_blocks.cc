#include "core/quant_blocks.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace petrel::quant {

namespace {

// Affine parameters of `n` values as MLX and GGUF Q4_1 define them: codes 0..levels map to
// [min, max]. A constant group gets d = 0 (every code decodes to min).
void AffineParams(const float* x, int64_t n, int levels, float* d, float* m) {
  float lo = x[0], hi = x[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  *d = (hi - lo) / (float)levels;
  *m = lo;
}

// Codes for w = d * q + m with the stored (f16-rounded) d and m, so rounding of the parameters
// is compensated by the choice of code.
void AffineCodes(const float* x, float d, float m, int levels, uint8_t* q) {
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < kBlock; ++i) {
    const float v = std::nearbyint((x[i] - m) * id);
    q[i] = (uint8_t)std::clamp(v, 0.0f, (float)levels);
  }
}

}  // namespace

void QuantizeRow(const float* src, int64_t n, DType t, void* dst, int64_t group) {
  PETREL_CHECK(n % kBlock == 0 && group % kBlock == 0 && n % group == 0)
      << "QuantizeRow n=" << n << " group=" << group;
  const int64_t nb = n / kBlock;
  switch (t) {
    case DType::kQ8_0: {
      auto* b = static_cast<BlockQ8_0*>(dst);
      for (int64_t j = 0; j < nb; ++j) {
        const float* x = src + j * kBlock;
        float amax = 0;
        for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[j].d = F32ToF16(d);
        for (int i = 0; i < kBlock; ++i) b[j].q[i] = (int8_t)std::nearbyint(x[i] * id);
      }
      return;
    }
    case DType::kQ4_0: {
      // GGUF's rule: the element of largest magnitude maps to code 0 (d = max / -8), so the
      // asymmetric range [-8, 7] puts its extra level on the side of the outlier.
      auto* b = static_cast<BlockQ4_0*>(dst);
      for (int64_t j = 0; j < nb; ++j) {
        const float* x = src + j * kBlock;
        float amax = 0, max = 0;
        for (int i = 0; i < kBlock; ++i)
          if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            max = x[i];
          }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[j].d = F32ToF16(d);
        for (int i = 0; i < 16; ++i) {
          const int lo = std::min(15, (int)(x[i] * id + 8.5f));
          const int hi = std::min(15, (int)(x[i + 16] * id + 8.5f));
          b[j].q[i] = (uint8_t)(lo | (hi << 4));
        }
      }
      return;
    }
    case DType::kQ4_1:
    case DType::kQ8_A: {
      const int levels = t == DType::kQ4_1 ? 15 : 255;
      for (int64_t g = 0; g < n; g += group) {
        float d, m;
        AffineParams(src + g, group, levels, &d, &m);
        const uint16_t dh = F32ToF16(d), mh = F32ToF16(m);
        const float dr = F16ToF32(dh), mr = F16ToF32(mh);
        for (int64_t j = g / kBlock; j < (g + group) / kBlock; ++j) {
          uint8_t q[kBlock];
          AffineCodes(src + j * kBlock, dr, mr, levels, q);
          if (t == DType::kQ4_1) {
            auto& b = static_cast<BlockQ4_1*>(dst)[j];
            b.d = dh;
            b.m = mh;
            for (int i = 0; i < 16; ++i) b.q[i] = (uint8_t)(q[i] | (q[i + 16] << 4));
          } else {
            auto& b = static_cast<BlockQ8_A*>(dst)[j];
            b.d = dh;
            b.m = mh;
            for (int i = 0; i < kBlock; ++i) b.q[i] = q[i];
          }
        }
      }
      return;
    }
    default:
      PETREL_CHECK(false) << "QuantizeRow: not a block type: " << DTypeName(t);
  }
}

void DequantizeRow(const void* src, DType t, float* dst, int64_t n) {
  const int64_t nb = n / kBlock;
  for (int64_t j = 0; j < nb; ++j) {
    float* y = dst + j * kBlock;
    switch (t) {
      case DType::kQ8_0: {
        const auto& b = static_cast<const BlockQ8_0*>(src)[j];
        const float d = F16ToF32(b.d);
        for (int i = 0; i < kBlock; ++i) y[i] = d * (float)b.q[i];
        break;
      }
      case DType::kQ4_0: {
        const auto& b = static_cast<const BlockQ4_0*>(src)[j];
        const float d = F16ToF32(b.d);
        for (int i = 0; i < kBlock; ++i) y[i] = d * (float)(Nibble(b.q, i) - 8);
        break;
      }
      case DType::kQ4_1: {
        const auto& b = static_cast<const BlockQ4_1*>(src)[j];
        const float d = F16ToF32(b.d), m = F16ToF32(b.m);
        for (int i = 0; i < kBlock; ++i) y[i] = d * (float)Nibble(b.q, i) + m;
        break;
      }
      case DType::kQ8_A: {
        const auto& b = static_cast<const BlockQ8_A*>(src)[j];
        const float d = F16ToF32(b.d), m = F16ToF32(b.m);
        for (int i = 0; i < kBlock; ++i) y[i] = d * (float)b.q[i] + m;
        break;
      }
      default:
        PETREL_CHECK(false) << "DequantizeRow: not a block type: " << DTypeName(t);
    }
  }
}

}  // namespace petrel::quant
