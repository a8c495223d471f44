// Template body of the CPU attention; included by one .cc per ISA so the compiler vectorises the
// dot products and axpys for that ISA. Not a public header.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/attention.h"

namespace petrel::kernels::cpu::impl {

template <typename KvT>
inline float ToF(KvT v) {
  if constexpr (sizeof(KvT) == 4) return v;
  else return BF16ToF32(v);
}

// 16 independent partial sums: vectorises without -ffast-math (no reassociation needed).
template <typename KvT>
inline float Dot(const float* __restrict q, const KvT* __restrict k, int n) {
  float acc[16] = {};
  int i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += q[i + j] * ToF(k[i + j]);
  float s = 0;
  for (; i < n; ++i) s += q[i] * ToF(k[i]);
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

template <typename KvT>
inline void Axpy(float* __restrict out, float w, const KvT* __restrict v, int n) {
  for (int i = 0; i < n; ++i) out[i] += w * ToF(v[i]);
}

template <typename KvT>
void Run(const AttentionArgs& a, ThreadPool& pool) {
  const AttentionParams& p = a.p;
  const int hd = p.head_dim;
  const int group = p.n_heads / p.n_kv_heads;
  const int64_t row_stride = (int64_t)p.n_heads * hd;
  const int64_t token_stride = (int64_t)p.n_kv_heads * hd;  // elements per cached token
  const KvT* kp = static_cast<const KvT*>(a.k_pool);
  const KvT* vp = static_cast<const KvT*>(a.v_pool);

  // Flatten (sequence, row) pairs; each work item is one query row, all heads.
  std::vector<std::pair<int, int>> items;
  for (int s = 0; s < (int)a.seqs.size(); ++s)
    for (int i = 0; i < a.seqs[s].q_len; ++i) items.push_back({s, i});
  // Work unit: (item, head) so single-token decode still spreads over threads.
  const int64_t n_units = (int64_t)items.size() * p.n_heads;
  pool.ParallelFor(n_units, 1, [&](int64_t b, int64_t e, int) {
    std::vector<float> scores;
    for (int64_t u = b; u < e; ++u) {
      const auto [s, i] = items[u / p.n_heads];
      const int h = (int)(u % p.n_heads);
      const AttentionSeq& seq = a.seqs[s];
      const int row = seq.q_begin + i;
      const int pos = seq.ctx_len - seq.q_len + i;
      const int start = p.sliding_window > 0 ? std::max(0, pos - p.sliding_window + 1) : 0;
      const int n = pos - start + 1;
      const float* q = a.q + row * row_stride + h * hd;
      float* out = a.out + row * row_stride + h * hd;
      const int kvh = h / group;
      scores.resize(n);
      float mx = -INFINITY;
      for (int j = 0; j < n; ++j) {
        const int t = start + j;
        const int64_t slot = (int64_t)seq.block_table[t / a.block_size] * a.block_size + t % a.block_size;
        scores[j] = p.scale * Dot(q, kp + slot * token_stride + kvh * hd, hd);
        mx = std::max(mx, scores[j]);
      }
      float sum = 0;
      for (int j = 0; j < n; ++j) {
        scores[j] = std::exp(scores[j] - mx);
        sum += scores[j];
      }
      const float inv = 1.0f / sum;
      std::fill(out, out + hd, 0.0f);
      for (int j = 0; j < n; ++j) {
        const int t = start + j;
        const int64_t slot = (int64_t)seq.block_table[t / a.block_size] * a.block_size + t % a.block_size;
        Axpy(out, scores[j] * inv, vp + slot * token_stride + kvh * hd, hd);
      }
    }
  });
}

inline void Dispatch(const AttentionArgs& a, ThreadPool& pool) {
  if (a.kv_dtype == DType::kBF16) Run<uint16_t>(a, pool);
  else Run<float>(a, pool);
}

}  // namespace petrel::kernels::cpu::impl
