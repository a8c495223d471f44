// Row gathers: token embeddings (table in its stored dtype -> f32) and GatherRows (f32 -> f32).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/elem.h"

namespace petrel::kernels::cuda {

// out[t, :] = f32(table[ids[t], :]) for t < n; table is [vocab, d] of `table_elem`. ids on device.
void LaunchEmbedding(float* out, const void* table, Elem table_elem, const int32_t* ids, int n,
                     int64_t d, cudaStream_t stream);
// out[i, :] = x[rows[i], :] for i < n, rows of d f32. rows on device.
void LaunchGatherRows(float* out, const float* x, const int32_t* rows, int n, int64_t d,
                      cudaStream_t stream);

}  // namespace petrel::kernels::cuda
