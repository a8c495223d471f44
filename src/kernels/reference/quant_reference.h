// Scalar references for the quantized matmul (test/debug only): the activation quantization rule
// the kernels use, and the product they must compute, in double precision.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace petrel::kernels::reference {

// One activation row x[K] (K a multiple of 32) -> int8 codes q[K] and a scale d per 32-block:
// d = max|x| / 127, q = round(x / d) (llama.cpp's Q8_0 activation rule).
void QuantizeActRow(const float* x, int64_t K, int8_t* q, float* d);

// out[T, N] = Q8(x)[T, K] . W[N, K]^T + bias with W in a block type (dequantized exactly), x
// quantized per row and 32-block by QuantizeActRow, sums in double. This is exactly what the CPU
// kernels compute up to f32 rounding.
void QuantMatMul(const float* x, const void* w, DType w_dtype, const float* bias, float* out,
                 int64_t T, int64_t K, int64_t N);

}  // namespace petrel::kernels::reference
