// The CUDA backend's deferred per-head ops (internal to cuda_backend.cc): RmsNorm over each head
// in place (Qwen3's q/k norm), Rope, then StoreKv, collected as the model calls them. When every
// entry is roped they run as one HeadOps launch (with the store when it came), or inside the
// decode attention kernel that follows (ToDecodeHeadOps); else one launch per op, in order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/decode_attention.cuh"
#include "kernels/cuda/elem.h"
#include "kernels/cuda/head_ops.cuh"

namespace petrel::kernels::cuda {

inline bool Overlaps(const void* a, size_t an, const void* b, size_t bn) {
  const char* x = static_cast<const char*>(a);
  const char* y = static_cast<const char*>(b);
  return x < y + bn && y < x + an;
}

struct HeadEntry {
  float* x = nullptr;
  int64_t n = 0;  // elements
  int d = 0;      // head_dim
  const float* norm_w = nullptr;
  float eps = 0.0f;
  bool rope = false;
  int n_heads = 0;
};

struct PendingHeads {
  HeadEntry e[kMaxHeadOpsEntries];
  int n = 0, d = 0;
  const int32_t* positions = nullptr;
  const float* inv_freq = nullptr;
  float scaling = 1.0f;
  int64_t T = 0;
  bool store = false;
  HeadOpsStore kv;  // when store

  HeadEntry* Find(const float* x) {
    for (int i = 0; i < n; ++i)
      if (e[i].x == x) return &e[i];
    return nullptr;
  }
  bool AllRoped() const {
    for (int i = 0; i < n; ++i)
      if (!e[i].rope) return false;
    return n > 0;
  }
};

// The pending ops as the decode attention's DecodeHeadOps when they are exactly one layer's for
// attention `a`: q (the attention's, n_heads heads) and k (n_kv_heads), normed or not, both roped
// at the step's positions, then stored with v at the step's slots `step_slots`, one row per
// token, into a's pools. Otherwise {} (on == false).
inline DecodeHeadOps ToDecodeHeadOps(const PendingHeads& h, const PagedAttentionArgs& a,
                                     int n_heads, int n_kv_heads, const int64_t* step_slots) {
  if (!h.store || !h.AllRoped() || h.n != 2 || h.kv.k_entry < 0 || h.kv.slots != step_slots ||
      h.T != a.n_rows || h.d != a.head_dim || h.kv.k_pool != a.k_pool || h.kv.v_pool != a.v_pool ||
      h.kv.kv_elem != a.kv_elem)
    return {};
  const HeadEntry& ke = h.e[h.kv.k_entry];
  const HeadEntry& qe = h.e[1 - h.kv.k_entry];
  if (qe.x != a.q || qe.n_heads != n_heads || ke.n_heads != n_kv_heads || ke.x != h.kv.k ||
      Overlaps(h.kv.v, (size_t)(h.T * h.kv.kv_row * 4), qe.x, (size_t)qe.n * 4))
    return {};
  DecodeHeadOps o;
  o.on = true;
  o.q = qe.x, o.k = ke.x, o.v = h.kv.v;
  o.q_norm_w = qe.norm_w, o.q_eps = qe.eps;
  o.k_norm_w = ke.norm_w, o.k_eps = ke.eps;
  o.positions = h.positions, o.inv_freq = h.inv_freq, o.attention_scaling = h.scaling;
  o.slots = h.kv.slots;
  return o;
}

}  // namespace petrel::kernels::cuda
