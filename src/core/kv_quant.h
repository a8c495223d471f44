// INT8 KV cache quantization: each cached head vector (one token, one kv head) is stored as int8
// codes with one f32 scale, symmetric: scale = max|x| / 127, code = round(x / scale) in [-127, 127],
// x ~= code * scale. The per-token, per-head granularity is the one vLLM's and TensorRT-LLM's
// dynamic INT8 KV caches use; the rounding error per element is at most scale / 2.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <string_view>

#include "core/dtype.h"
#include "core/error.h"

namespace petrel {

// Bytes one cached head vector takes: head_dim elements, plus its f32 scale for int8.
inline int64_t KvHeadVectorBytes(DType kv_dtype, int64_t head_dim) {
  return head_dim * (int64_t)DTypeSize(kv_dtype) + (kv_dtype == DType::kI8 ? (int64_t)sizeof(float) : 0);
}

// --kv-cache-dtype values: f32, bf16, int8 (i8).
inline Result<DType> ParseKvCacheDType(std::string_view name) {
  if (name == "f32" || name == "float32") return DType::kF32;
  if (name == "bf16" || name == "bfloat16") return DType::kBF16;
  if (name == "int8" || name == "i8") return DType::kI8;
  return InvalidArgument("KV cache dtype must be f32, bf16 or int8, got \"", name, "\"");
}

// Quantizes n floats to int8 codes; returns the scale (0 for an all-zero vector, codes 0).
inline float QuantizeKvI8(const float* x, int64_t n, int8_t* q) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float scale = amax / 127.0f;
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int64_t i = 0; i < n; ++i)
    q[i] = (int8_t)std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f);
  return scale;
}

}  // namespace petrel
