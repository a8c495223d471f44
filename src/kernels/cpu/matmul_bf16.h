// CPU matmul with bf16 activations (AVX512_BF16): out[T, N] = bf16(x)[T, K] . W[N, K]^T (+ bias)
// for bf16 weights, f32 accumulation. The activations are rounded to bf16 (round to nearest even)
// once per call, the way llama.cpp rounds them to f16 and transformers computes a bf16 model; the
// products of two bf16 numbers are exact in f32, so the only extra error next to the f32 path is
// that rounding (relative 2^-9 per activation). Chosen by Backend MatMulPrecision (backend.h).
//
// Method (the packed-panel GEMM of Goto & van de Geijn, "Anatomy of High-Performance Matrix
// Multiplication", 2008, with the vdpbf16ps instruction as the inner product):
//  - Activations: one bf16 copy of x, as pairs (see Bf16Pairs).
//  - Weights: per thread, a panel of 64 output columns over a K block is packed "pair-interleaved":
//    32-bit word (p, c) holds (W[n0 + c][2p], W[n0 + c][2p + 1]), so one 512-bit load gives 16
//    columns and vdpbf16ps multiplies each against the broadcast activation pair (x[t][2p],
//    x[t][2p + 1]): 32 multiply-adds per instruction, no horizontal reductions.
//  - A 6-row x 64-column register tile (24 zmm accumulators) runs over the packed panel.
#pragma once

#include <cstdint>

#include "kernels/cpu/matmul.h"

namespace petrel::kernels::cpu {

// Activations as bf16 pairs: row t of x is xp[t * pairs .. (t + 1) * pairs), word p holding
// (bf16(x[t][2p]) low half, bf16(x[t][2p + 1]) high half); pairs = ceil(K / 2), an odd K padded with
// a zero.
inline int64_t Bf16Pairs(int64_t K) { return (K + 1) / 2; }

// Rounds rows [t_begin, t_end) of x [T, K] (f32) to bf16 pairs into xp [T, Bf16Pairs(K)].
void ConvertRowsToBf16Avx512(const float* x, int64_t K, uint32_t* xp, int64_t t_begin, int64_t t_end);

// Columns [n_begin, n_end) of a.out for all a.T rows; a.w_dtype must be kBF16, xp the activations
// as above (a.x is unused).
void MatMulBf16ActAvx512(const MatMulArgs& a, const uint32_t* xp, int64_t n_begin, int64_t n_end);

// Output columns per packed panel: the unit in which callers should split N across threads.
constexpr int64_t kBf16PanelCols = 64;

}  // namespace petrel::kernels::cpu
