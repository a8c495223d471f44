// The per-head work between the q/k/v projections and attention, fused into one launch: for q and
// k, an optional RMSNorm over each head's vector (Qwen3's q_norm / k_norm) followed by RoPE
// ("rotate_half" pairs i, i + head_dim/2), in place; then, optionally, this step's k (as just
// computed) and v written into the paged KV cache at their slots. The backend collects these ops
// (RmsNorm per head, Rope, StoreKv) as they are called and launches this kernel instead of five.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/elem.h"

namespace petrel::kernels::cuda {

constexpr int kMaxHeadOpsEntries = 2;
constexpr int kMaxHeadOpsDim = 256;

struct HeadOpsEntry {
  float* x = nullptr;             // [n_tokens, n_heads * head_dim] f32, updated in place
  int n_heads = 0;
  const float* norm_w = nullptr;  // [head_dim] f32, or nullptr (no norm)
  float eps = 0.0f;
};

// The KV store that may end the per-head ops: k, v [n_tokens, kv_row] go to the pools at
// slots[t]. When k is entry k_entry's x, the values written are the normed and rotated ones.
struct HeadOpsStore {
  void* k_pool = nullptr;
  void* v_pool = nullptr;
  Elem kv_elem = Elem::kBF16;
  const float* k = nullptr;
  const float* v = nullptr;
  const int64_t* slots = nullptr;
  int64_t kv_row = 0;
  int k_entry = -1;
};

struct HeadOpsArgs {
  HeadOpsEntry e[kMaxHeadOpsEntries];
  int n_entries = 0;
  int64_t n_tokens = 0;
  int head_dim = 0;
  // RoPE at positions[n_tokens] with inv_freq[head_dim / 2] and attention_scaling, as LaunchRope.
  const int32_t* positions = nullptr;
  const float* inv_freq = nullptr;
  float attention_scaling = 1.0f;
  HeadOpsStore kv;  // optional (kv.k_pool == nullptr: none)
};

// head_dim even and <= kMaxHeadOpsDim. Grid: n_tokens x ceil(heads / 8) blocks.
void LaunchHeadOps(const HeadOpsArgs& a, cudaStream_t stream);

}  // namespace petrel::kernels::cuda
