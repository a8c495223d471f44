// Vectorised elementwise CPU kernels that the compiler does not vectorise on its own (they call
// exp, or the backend's generic build has no AVX-512). One implementation per ISA; the CPU backend
// picks one at construction. Each gives the bits of the backend's scalar loop.
#pragma once

#include <cstdint>

namespace petrel::kernels::cpu {

// out[i] = silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i] for i < n (out may alias gate).
void SiluMulAvx512(const float* gate, const float* up, float* out, int64_t n);

// sum a[i] * b[i] in 16 lanes (lane j over i = j mod 16 of the whole 16-blocks, in order), then
// the tail, then the lanes 0..15; no fused multiply-adds.
float LaneDot(const float* a, const float* b, int64_t n);

// One RMSNorm row: out[k] = w[k] * (x[k] * inv), inv = 1 / sqrt(ss / d + eps), where ss sums x^2
// in 16 lanes (lane j over k = j mod 16 of the whole 16-blocks, in order), then the tail, then
// the lanes 0..15; no fused multiply-adds. out may alias x. RmsNormRow is the portable version.
void RmsNormRow(const float* x, const float* w, float* out, int64_t d, float eps);
void RmsNormRowAvx512(const float* x, const float* w, float* out, int64_t d, float eps);

// f32 -> bf16, round to nearest even, NaN kept NaN: F32ToBF16 (core/dtype.h) 16 at a time.
void F32ToBF16Avx512(const float* src, uint16_t* dst, int64_t n);

}  // namespace petrel::kernels::cpu
