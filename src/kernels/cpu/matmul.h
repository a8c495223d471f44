// CPU matrix multiplication out[T, N] = x[T, K] . W[N, K]^T (+ bias), f32 accumulation over f32 /
// f16 / bf16 weights. One implementation per ISA (matmul_generic.cc, matmul_avx2.cc,
// matmul_avx512.cc); each computes the output columns [n_begin, n_end) so the caller can split N
// across threads.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/dtype.h"

namespace petrel::kernels::cpu {

struct MatMulArgs {
  const float* x;    // [T, K], row stride K
  const void* w;     // [N, K] in w_dtype, row stride K
  DType w_dtype;
  const float* bias; // [N] or nullptr
  float* out;        // [T, N], row stride N
  int64_t T, K, N;
};

// Products with at most this many activation rows are decode products: memory-bound on W, read
// in one pass (each thread its own share of the rows, ThreadPool::OwnedFor) with x kept in f32
// (or quantised once for the block types); more rows take the compute-bound prefill paths.
constexpr int64_t kDecodeMaxRows = 8;

// Calls f(std::integral_constant<int, V>{}) for the V of the list equal to v (a row count known
// only at run time, picked out for kernels templated on it); false, having done nothing, if none.
template <int... Vs, typename F>
bool WithConstant(std::integer_sequence<int, Vs...>, int64_t v, F&& f) {
  return ((v == Vs && (f(std::integral_constant<int, Vs>{}), true)) || ...);
}
using DecodeRowCounts = std::integer_sequence<int, 1, 2, 3, 4, 5, 6, 7, 8>;  // 1..kDecodeMaxRows
static_assert(DecodeRowCounts::size() == kDecodeMaxRows);

using MatMulFn = void (*)(const MatMulArgs& a, int64_t n_begin, int64_t n_end);

void MatMulGeneric(const MatMulArgs& a, int64_t n_begin, int64_t n_end);
void MatMulAvx2(const MatMulArgs& a, int64_t n_begin, int64_t n_end);
void MatMulAvx512(const MatMulArgs& a, int64_t n_begin, int64_t n_end);

}  // namespace petrel::kernels::cpu
