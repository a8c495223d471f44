// Element types of tensors, and the scalar fp16/bf16 <-> fp32 conversions every module shares.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "core/error.h"

namespace petrel {

// Storage types. The integer types are carried for quantized layouts (MLX packs codes in U32,
// GGUF blocks are byte streams) even where no kernel reads them directly yet.
//
// Block-quantized weight types (appended; earlier values keep their numbers). Each block encodes
// 32 consecutive elements of a row; layouts are in core/quant_blocks.h:
//   kQ8_0: f16 d, int8 q[32]                   w = d * q              (34 bytes, GGUF Q8_0)
//   kQ4_0: f16 d, 16 bytes of 4-bit codes      w = d * (q - 8)        (18 bytes, GGUF Q4_0)
//   kQ4_1: f16 d, f16 m, 16 bytes of codes     w = d * q + m          (20 bytes, GGUF Q4_1)
//   kQ8_A: f16 d, f16 m, uint8 q[32]           w = d * q + m          (36 bytes, petrel's own:
//          MLX 8-bit affine held exactly; not GGUF's Q8_1, which is an activation type)
// A tensor of a block type has its logical shape ([out, in]); its last dimension is a multiple
// of 32 and its bytes are NumElements / 32 * DTypeSize.
enum class DType : uint8_t {
  kF32, kF16, kBF16, kI8, kU8, kI16, kI32, kU32, kI64, kBool,
  kQ8_0, kQ4_0, kQ4_1, kQ8_A,
};

// Bytes per element; for a block-quantized type, bytes per block (see DTypeBlockSize).
size_t DTypeSize(DType t);
// Elements per block: 1 for plain types, 32 for the block-quantized ones.
int64_t DTypeBlockSize(DType t);
inline bool IsBlockQuantized(DType t) { return DTypeBlockSize(t) > 1; }
// Bytes of `n` elements (n a multiple of the block size for block types).
inline size_t DTypeBytes(DType t, int64_t n) { return (size_t)(n / DTypeBlockSize(t)) * DTypeSize(t); }
// Canonical upper-case name as safetensors writes it ("F32", "BF16", ...).
const char* DTypeName(DType t);
// Parses a safetensors dtype string; unknown names are a kUnsupported error naming them.
Result<DType> ParseSafetensorsDType(std::string_view name);
// Parses user-facing names: "f32"/"float32", "f16"/"float16", "bf16"/"bfloat16".
Result<DType> ParseFloatDType(std::string_view name);

// IEEE half -> float (handles subnormals, inf, nan).
inline float F16ToF32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

// float -> IEEE half, round to nearest even.
inline uint16_t F32ToF16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t abs = x & 0x7fffffff;
  if (abs >= 0x7f800000u) return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);  // inf/nan
  if (abs >= 0x477ff000u) return sign | 0x7c00;                                    // overflow
  if (abs < 0x38800000u) {  // subnormal or zero in half
    if (abs < 0x33000000u) return sign;
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // value / 2^-24 = m * 2^(e - 126)
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return sign | r;
  }
  uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15
  const uint32_t rem = r & 0x1fff;
  r >>= 13;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;
  return sign | r;
}

inline float BF16ToF32(uint16_t b) { return std::bit_cast<float>((uint32_t)b << 16); }

// float -> bfloat16, round to nearest even (as torch does); NaN stays NaN.
inline uint16_t F32ToBF16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffff) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

}  // namespace petrel
