// Writes this step's keys and values into the paged KV cache: k, v [T, row] f32 (row =
// n_kv_heads * head_dim) go to pool[slots[t], :] in the cache dtype (f32 or bf16).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/elem.h"

namespace petrel::kernels::cuda {

void LaunchStoreKv(void* k_pool, void* v_pool, Elem kv_elem, const float* k, const float* v,
                   const int64_t* slots, int n_tokens, int64_t row, cudaStream_t stream);

}  // namespace petrel::kernels::cuda
