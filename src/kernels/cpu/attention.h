// CPU paged attention (causal, GQA, optional sliding window) over the KV cache pools. The same
// template (attention_impl.h) is compiled per ISA: attention_generic.cc and attention_avx512.cc.
#pragma once

#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "kernels/backend.h"

namespace petrel::kernels::cpu {

struct AttentionArgs {
  float* out;              // [T, n_heads * head_dim]
  const float* q;          // [T, n_heads * head_dim]
  // This layer's pools, [n_blocks, n_kv_heads, block_size, head_dim]: head-major inside a block,
  // so one kv head's keys of a block are one contiguous run (a decode step reads them as a
  // stream instead of head_dim-sized pieces a whole token row apart).
  const void* k_pool;
  const void* v_pool;
  DType kv_dtype;          // f32, bf16 or i8
  const float* k_scale;    // i8 only: [n_blocks, block_size, n_kv_heads] (core/kv_quant.h), else null
  const float* v_scale;
  int block_size;
  std::span<const AttentionSeq> seqs;
  AttentionParams p;
};

// Element offset of the vector of (cache slot, kv head) in a pool laid out as above: the one
// definition of the layout, for StoreKv's writes and the kernels' reads.
inline int64_t KvVectorOffset(int64_t slot, int kvh, int n_kv_heads, int block_size, int head_dim) {
  return ((slot / block_size * n_kv_heads + kvh) * block_size + slot % block_size) * head_dim;
}

using AttentionFn = void (*)(const AttentionArgs& a, ThreadPool& pool);
void AttentionGeneric(const AttentionArgs& a, ThreadPool& pool);
void AttentionAvx512(const AttentionArgs& a, ThreadPool& pool);

}  // namespace petrel::kernels::cpu
