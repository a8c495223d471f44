// Causal attention of query rows over a paged KV cache, for decode and prefill alike: every query
// row (a token of some sequence in the flattened batch) attends to the cached tokens of its own
// sequence up to its position, found through that sequence's block table. GQA-aware: the query
// heads that share a KV head are computed together, so each K/V row is read once for all of them.
// Split-K: the context is cut into partitions of kPartition tokens handled by separate blocks
// whose partial results (output, running max, sum) a second kernel merges [vLLM PagedAttention
// v2; the merge is the online-softmax rescaling of FlashAttention / FlashDecoding].
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/elem.h"

namespace petrel::kernels::cuda {

constexpr int kPartition = 256;  // context tokens per split-K partition

struct PagedAttentionArgs {
  float* out = nullptr;          // [T, n_heads * head_dim]
  const float* q = nullptr;      // [T, n_heads * head_dim]
  const void* k_pool = nullptr;  // [n_blocks, block_size, n_kv_heads, head_dim]
  const void* v_pool = nullptr;
  Elem kv_elem = Elem::kF32;
  const int32_t* row_seq = nullptr;       // [T] sequence index of each row
  const int32_t* seq_info = nullptr;      // [S, 3] q_begin, q_len, ctx_len
  const int32_t* block_tables = nullptr;  // [S, table_stride]
  int table_stride = 0;
  int n_rows = 0;  // T
  int n_seqs = 0;  // sequences in seq_info (the prefill kernel's tile lookup)
  int block_size = 16;
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;
  int sliding_window = 0;
  // Split-K: partitions cover tokens [0, n_parts * kPartition); n_parts is fixed from the table
  // capacity (not from this step's lengths) so a captured CUDA graph stays valid as contexts grow.
  int n_parts = 1;
  float* part_out = nullptr;  // [T, n_heads, n_parts, head_dim]   (n_parts > 1)
  float* part_ml = nullptr;   // [T, n_heads, n_parts, 2] max, sum (n_parts > 1)
};

// Sets the kernels' shared-memory limits; call once per device before the first launch.
void ConfigurePagedAttention();
void LaunchPagedAttention(const PagedAttentionArgs& a, cudaStream_t stream);

}  // namespace petrel::kernels::cuda
