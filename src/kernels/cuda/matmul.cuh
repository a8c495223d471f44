// out[T, N] = x[T, K] . w[N, K]^T (+ bias[N]) with f32 activations and accumulation and weights in
// their stored dtype. Two paths:
//  - T <= kGemvMaxRows (decode): a GEMV kernel that streams each weight row once with 16-byte
//    loads and reads the f32 activations directly (no rounding of x at all);
//  - larger T (prefill, big decode batches): cuBLAS. For bf16/f16 weights x is first rounded to
//    the weights' type (tensor-core GEMM, f32 accumulate and output, as vLLM/HF run bf16 models);
//    f32 weights use an f32 GEMM (no TF32).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/elem.h"

namespace petrel::kernels::cuda {

constexpr int64_t kGemvMaxRows = 8;

struct MatMulArgs {
  float* out = nullptr;         // [T, N]
  const float* x = nullptr;     // [T, K]
  const void* w = nullptr;      // [N, K] in w_elem
  Elem w_elem = Elem::kBF16;
  const float* bias = nullptr;  // [N] or nullptr
  int64_t T = 0, K = 0, N = 0;
  // Scratch of at least T * K 16-bit elements for the rounded activations (cuBLAS path with
  // 16-bit weights only).
  void* x16 = nullptr;
};

// Several GEMVs (T <= kGemvMaxRows) over the same activations x [T, K], one launch: segment i
// computes out_i[T, n_i] = x . w_i^T (+ bias_i); its rows are numbered begin_i .. begin_i + n_i - 1
// in the launch (begin_0 = 0, begin_{i+1} = begin_i + n_i). The backend uses it for q/k/v and
// gate/up (consecutive MatMuls on one input); no weights are copied or concatenated.
constexpr int kMaxGemvSegs = 3;
struct GemvSeg {
  float* out = nullptr;
  const void* w = nullptr;
  const float* bias = nullptr;
  int64_t begin = 0, n = 0;
};
struct GemvGroup {
  GemvSeg seg[kMaxGemvSegs];
  int n_segs = 0;
  // Fused epilogues (see matmul.cu); all off when null.
  float* residual = nullptr;      // one segment: residual[T, n] += out (a following residual Add)
  float* silu_out = nullptr;      // segments gate, up of equal n: silu_out = silu(gate) * up
  unsigned long long* amax = nullptr;  // one segment: per-row argmax keys [T], zero between launches
  int32_t* amax_ids = nullptr;         //   the argmax of each row [T] (first maximal index)
  unsigned* amax_counter = nullptr;    //   blocks finished, zero between launches
  // RMSNorm prologue: the GEMVs' input is RmsNorm(norm_x) * norm_w (rows of K, f32 weight), each
  // block normalising for itself; block 0 also writes it to the launch's x (the norm's output).
  const float* norm_x = nullptr;
  const float* norm_w = nullptr;
  float norm_eps = 0.0f;
};
// Whether a MatMul of these arguments may join a group (16-byte aligned, K % 8 == 0, T small).
bool GemvGroupable(const float* x, const void* w, int64_t T, int64_t K);
void LaunchGemvGroup(const GemvGroup& g, Elem w_elem, const float* x, int64_t T, int64_t K,
                     cudaStream_t stream);

// Bytes of scratch MatMul() needs for these sizes (0 when it needs none).
size_t MatMulScratchBytes(int64_t T, int64_t K, Elem w_elem);
void MatMul(const MatMulArgs& a, cublasHandle_t cublas, cudaStream_t stream);

}  // namespace petrel::kernels::cuda
