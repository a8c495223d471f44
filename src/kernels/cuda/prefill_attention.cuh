// Causal attention for prefill and chunked-prefill rows over the paged KV cache, tiled in the
// manner of FlashAttention-2 [Dao 2023]: a block takes a tile of query rows of one sequence
// (times the query heads of one KV head, GQA), walks the sequence's cached tokens in tiles of 64
// read through its block table into shared memory (cp.async), and keeps a running max, sum and
// output per row (online softmax), so K and V are read once per query tile instead of once per
// row. f32 arithmetic on the CUDA cores (same accuracy as the reference).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/paged_attention.cuh"

namespace petrel::kernels::cuda {

// Query rows per tile for this head layout (64 virtual rows = rows x query heads of the group).
int PrefillTileRows(const PagedAttentionArgs& a);
// Whether the kernel handles these arguments (head_dim a multiple of one 16-byte piece, <= 128).
bool PrefillAttentionSupported(const PagedAttentionArgs& a);
void ConfigurePrefillAttention();
// a.n_seqs sequences; n_tiles = sum over sequences of ceil(q_len / PrefillTileRows(a)).
void LaunchPrefillAttention(const PagedAttentionArgs& a, int n_tiles, cudaStream_t stream);

}  // namespace petrel::kernels::cuda
