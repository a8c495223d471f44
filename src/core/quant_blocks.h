// Block-quantized weight layouts (DType::kQ8_0, kQ4_0, kQ4_1, kQ8_A) and the scalar routines that
// quantize an f32 row into them and dequantize them back. The GGUF types follow the block
// definitions of llama.cpp's ggml-common.h (read for the format, not copied): a block covers 32
// consecutive elements of a row; 4-bit codes are packed two per byte with byte j holding element j
// in its low nibble and element j + 16 in its high nibble.
//
// Used by the loader (quantize at load, MLX / GGUF conversion), `petrel quantize`, the kernel
// tests and ConvertToF32 (dequantization of a whole tensor). Not a hot path: the matmul kernels
// read the blocks themselves (src/kernels/cpu/quant_matmul_*.cc).
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace petrel::quant {

constexpr int kBlock = 32;  // elements per block, every type

struct BlockQ8_0 {  // w = d * q
  uint16_t d;       // f16
  int8_t q[32];
};
struct BlockQ4_0 {  // w = d * (q - 8), q in [0, 15]
  uint16_t d;       // f16
  uint8_t q[16];    // byte j: element j (low nibble), element j + 16 (high nibble)
};
struct BlockQ4_1 {  // w = d * q + m, q in [0, 15]
  uint16_t d, m;    // f16
  uint8_t q[16];
};
struct BlockQ8_A {  // w = d * q + m, q in [0, 255] (MLX 8-bit affine, exactly)
  uint16_t d, m;    // f16
  uint8_t q[32];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 &&
              sizeof(BlockQ8_A) == 36);

// Quantizes `n` floats (n a multiple of 32) into blocks of `t` at `dst` (n / 32 blocks).
// Q8_0 / Q4_0 are symmetric per 32-block (GGUF's rounding rules). Q4_1 / Q8_A are affine
// (d = (max - min) / (2^bits - 1), m = min) over `group` consecutive elements (a multiple of 32
// dividing n): the 32-blocks of one group repeat the same d and m, which is how an MLX group of 64
// or 128 becomes blocks. PETREL_CHECKs a block dtype and the divisibility (callers validate).
void QuantizeRow(const float* src, int64_t n, DType t, void* dst, int64_t group = kBlock);

// Dequantizes `n` elements (n a multiple of 32) of blocks of `t` into dst.
void DequantizeRow(const void* src, DType t, float* dst, int64_t n);

// The value of 4-bit code i (0..31) of a Q4_0 / Q4_1 block's packed bytes.
inline int Nibble(const uint8_t* q, int i) { return i < 16 ? (q[i] & 0xF) : (q[i - 16] >> 4); }

}  // namespace petrel::quant
