// CPU matmul over block-quantized weights (DType::kQ8_0 / kQ4_0 / kQ4_1 / kQ8_A, see
// core/quant_blocks.h): out[T, N] = x[T, K] . W[N, K]^T (+ bias).
//
// The method is llama.cpp's (integer dot products against int8 activations), organised for reuse:
//  1. Activations are quantized once per call, per row and per 32-block, to int8 with an f32 scale
//     dx (symmetric, amax / 127) — QuantActs below. Prefill reuses them across every weight row.
//  2. A panel of kPanelRows weight rows is unpacked into one uniform form: unsigned 8-bit codes u,
//     the block scale dw (repeated 8x, one per SIMD lane of a block's dot product) and an offset c
//     per block, so that w = dw * u + c for every type (Q8_0: u = q + 128, c = -128 dw; Q4_0:
//     c = -8 dw; Q4_1 / Q8_A: c = m).
//  3. Then out[t, n] = sum_b dw_b dx_b (u_b . q_b) + c_b dx_b sum(q_b): the integer dot u . q is
//     vpdpbusd (AVX-512 VNNI, unsigned x signed), or _mm256_maddubs_epi16 (AVX2, after turning
//     8-bit codes signed so the pairwise int16 sums cannot saturate), or plain loops (generic).
//     The second term is a short f32 dot over blocks, once per (row, token).
// Every ISA file computes output columns [n_begin, n_end) for all T; QuantMatMul() quantizes the
// activations and splits N over the thread pool. Tested against kernels/reference/quant_reference.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"

namespace petrel {
class ThreadPool;
}

namespace petrel::kernels::cpu {

constexpr int kPanelRows = 4;

// Activations [T, K] quantized per 32-block. nb = K / 32 rounded up to even (the AVX-512 kernel
// takes two blocks per 512-bit op); padding blocks are zero.
struct QuantActs {
  int64_t T = 0, K = 0, nb = 0;
  int8_t* q = nullptr;      // [T, nb * 32]
  float* dexp = nullptr;    // [T, nb * 8]  dx of each block, repeated 8 times
  float* ds = nullptr;      // [T, nb]      dx * sum(q) of each block
  int32_t* qsum = nullptr;  // [T, nb]      sum(q) of each block (the packed kernels' offset term)
};

// Quantizes rows [t_begin, t_end) of x into `a` (whose buffers are sized for a.T rows). The
// AVX-512 version gives bit-identical results (same float operations, round to nearest even).
void QuantizeActs(const float* x, QuantActs& a, int64_t t_begin, int64_t t_end);
void QuantizeActsAvx512(const float* x, QuantActs& a, int64_t t_begin, int64_t t_end);

// Quantizes m.x ([m.T, m.K]) into thread-local scratch of the calling thread (on `pool` when T is
// large enough to be worth it) and returns the view of it; valid until the next call on this thread.
QuantActs PrepareQuantActs(const MatMulArgs& m, ThreadPool& pool, Isa isa);

// The per-ISA kernels: columns [n_begin, n_end) of out for all a.T rows. `w` is the whole weight
// tensor [N, K] in w_dtype; x is unused (acts holds the quantized activations).
using QuantMatMulFn = void (*)(const MatMulArgs& m, const QuantActs& acts, int64_t n_begin,
                               int64_t n_end);
void QuantMatMulGeneric(const MatMulArgs& m, const QuantActs& acts, int64_t n_begin, int64_t n_end);
void QuantMatMulAvx2(const MatMulArgs& m, const QuantActs& acts, int64_t n_begin, int64_t n_end);
void QuantMatMulAvx512(const MatMulArgs& m, const QuantActs& acts, int64_t n_begin, int64_t n_end);

// The whole product on `pool` with the kernel of `isa`. m.K must be a multiple of 32.
void QuantMatMul(const MatMulArgs& m, ThreadPool& pool, Isa isa);

}  // namespace petrel::kernels::cpu
