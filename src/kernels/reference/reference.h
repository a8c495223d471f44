// Scalar reference implementations of every op: the truth the optimised kernels are tested
// against (double accumulation, no threads, no SIMD, contiguous — not paged — K/V). Test/debug only.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace petrel::kernels::reference {

// out[T, N] = x[T, K] . w[N, K]^T + bias  (w in w_dtype).
void MatMul(const float* x, const void* w, DType w_dtype, const float* bias, float* out,
            int64_t T, int64_t K, int64_t N);
// The same with x first rounded to bf16 (round to nearest even, F32ToBF16): what the CPU's
// bf16-activation matmul (MatMulPrecision::kBF16) computes, up to f32 accumulation order.
void MatMulBf16Activations(const float* x, const void* w, DType w_dtype, const float* bias,
                           float* out, int64_t T, int64_t K, int64_t N);
void RmsNorm(const float* x, const float* w, float* out, int64_t rows, int64_t d, float eps);
// x [T, n_heads, head_dim] rotated in place (rotate_half pairs i, i + head_dim/2).
void Rope(float* x, int64_t T, int n_heads, int head_dim, const int32_t* positions,
          const std::vector<float>& inv_freq, float attention_scaling);
void SiluMul(const float* gate, const float* up, float* out, int64_t n);
// One sequence: q [n_q, n_heads*hd] at positions ctx-n_q .. ctx-1; k, v [ctx, n_kv_heads*hd].
void Attention(const float* q, const float* k, const float* v, float* out, int n_q, int ctx,
               int n_heads, int n_kv_heads, int head_dim, float scale, int sliding_window);

}  // namespace petrel::kernels::reference
