// Attention for decode steps (every query row is the newest token of its sequence) over the paged
// KV cache: split-K over the context in pieces of `split` tokens, one block per (row, KV head,
// split), GQA heads of one KV head together [FlashDecoding; vLLM PagedAttention v2].
//
// Built for latency: a block copies its whole K and V piece into shared memory with asynchronous
// 16-byte copies (cp.async) issued at once, most of them before the PDL wait (tokens of earlier
// steps do not change, so they can be fetched while the kernels before are still running), then
// scores, softmax and P.V run from shared memory. The splits of one row are merged by a second,
// small kernel for up to 8 rows (DecodeMergeKernel: the in-kernel merge ran ~4.5 us a layer in
// the row's last block), and by the last of the row's blocks to finish (a counter per row and KV
// head) for larger batches (where the kernel's many blocks per SM keep the in-kernel merge; the
// second kernel was measured up to batch 8 only).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/paged_attention.cuh"

namespace petrel::kernels::cuda {

struct DecodeAttentionScratch {
  float* part_out = nullptr;   // [T, n_heads, n_splits, head_dim]
  float* part_ml = nullptr;    // [T, n_heads, n_splits, 2]
  unsigned* counters = nullptr;  // [T * n_kv_heads * head chunks], zero between launches
  // With merge_kernel, a second small kernel merges the splits of each (row, head) instead of the
  // last block of the row (no counters); the head ops' rotated q then goes through q_rot
  // [T, n_heads * head_dim], copied into q by that kernel.
  bool merge_kernel = false;
  float* q_rot = nullptr;
};

// The step's per-head ops (head_ops.cuh: q/k RMSNorm per head, RoPE, the KV store of k and v)
// done by the decode attention kernel itself instead of a HeadOps launch before it: each block
// normalises and rotates its own query heads, the block whose split holds the row's token also
// its KV head's new k, and writes k and v to the cache (into its shared copy as well); q and k
// are left normed and rotated in place as the separate ops leave them (q by the block that
// finishes the row, after every split has read it). For decode batches whose rows are one new
// token each, at the slots `slots`, with GQA groups of at most 8 query heads (one head chunk).
struct DecodeHeadOps {
  bool on = false;
  float* q = nullptr;  // the attention's q [T, n_heads * head_dim], raw on entry
  float* k = nullptr;  // [T, n_kv_heads * head_dim], raw on entry
  const float* v = nullptr;
  const float* q_norm_w = nullptr;  // [head_dim] or nullptr (no norm)
  float q_eps = 0.0f;
  const float* k_norm_w = nullptr;
  float k_eps = 0.0f;
  const int32_t* positions = nullptr;  // [T]
  const float* inv_freq = nullptr;     // [head_dim / 2]
  float attention_scaling = 1.0f;
  const int64_t* slots = nullptr;  // [T] the cache slot of each row's token
  // [T][head_dim / 2] (cos, sin) of each row's position, as RopePair computes them: the same for
  // every layer of a step, so computed once (LaunchRopeTable). Required when `on`.
  const float2* rope_cs = nullptr;
};
// RoPE's (cos, sin) for T positions and head_dim / 2 frequencies into out[T][half], as RopePair
// computes them (a PDL launch; it waits on the kernel before it only at its end).
void LaunchRopeTable(float2* out, const int32_t* positions, const float* inv_freq, float scaling,
                     int T, int half, cudaStream_t stream);
// Whether the kernel can do the head ops for these arguments (see DecodeHeadOps).
bool DecodeHeadOpsSupported(const PagedAttentionArgs& a);

// Tokens per split: 32 for f32 KV; for 16-bit, 32 up to 8 rows, else 64 (see the .cu).
int DecodeSplit(const PagedAttentionArgs& a);
// Whether the decode kernel handles these arguments (head_dim a multiple of one 16-byte piece,
// at most 256, shared memory within the limit); the general kernel takes the rest.
bool DecodeAttentionSupported(const PagedAttentionArgs& a);
// Scratch sizes in elements for n_splits splits.
int64_t DecodePartFloats(const PagedAttentionArgs& a, int n_splits);
int64_t DecodeCounters(const PagedAttentionArgs& a);
void ConfigureDecodeAttention();
// a.n_parts is ignored; n_splits splits of DecodeSplit() tokens must cover every row's context.
// `prefetch`: the K/V entries of positions before ctx_len - q_len (earlier steps) are not written
// by any kernel that may still run (so they are fetched before the PDL wait); false when the
// caller cannot promise it (KV stored outside the step's announced slots since the last sync).
void LaunchDecodeAttention(const PagedAttentionArgs& a, int n_splits,
                           const DecodeAttentionScratch& s, bool prefetch, cudaStream_t stream,
                           const DecodeHeadOps& heads = {});

}  // namespace petrel::kernels::cuda
