#include "core/tensor.h"

#include "core/quant_blocks.h"

namespace petrel {

void ConvertToF32(const void* src, DType dtype, float* dst, int64_t n) {
  switch (dtype) {
    case DType::kF32: {
      const float* s = static_cast<const float*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = s[i];
      return;
    }
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      return;
    }
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(s[i]);
      return;
    }
    case DType::kQ8_0: case DType::kQ4_0: case DType::kQ4_1: case DType::kQ8_A:
      quant::DequantizeRow(src, dtype, dst, n);  // n: a multiple of 32 (whole blocks)
      return;
    default:
      PETREL_CHECK(false) << "ConvertToF32: not a float dtype: " << DTypeName(dtype);
  }
}

void ConvertFromF32(const float* src, DType dtype, void* dst, int64_t n) {
  switch (dtype) {
    case DType::kF32: {
      float* d = static_cast<float*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = src[i];
      return;
    }
    case DType::kF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToF16(src[i]);
      return;
    }
    case DType::kBF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(src[i]);
      return;
    }
    default:
      PETREL_CHECK(false) << "ConvertFromF32: not a float dtype: " << DTypeName(dtype);
  }
}

}  // namespace petrel
