// Template body of the CPU attention; included by one .cc per ISA so the compiler vectorises the
// dot products and axpys for that ISA. Not a public header.
#pragma once

#include <algorithm>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
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

// Dot and axpy over one head vector. The AVX-512 build (attention_avx512.cc defines __AVX512F__)
// uses explicit 16-lane code; elsewhere 16 independent partial sums let the compiler vectorise
// without -ffast-math.
#if defined(__AVX512F__)
template <typename KvT>
inline __m512 LoadKv16(const KvT* p) {
  if constexpr (sizeof(KvT) == 4) {
    return _mm512_loadu_ps(p);
  } else {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}
#endif

template <typename KvT>
inline float Dot(const float* __restrict q, const KvT* __restrict k, int n) {
  int i = 0;
  float s = 0;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LoadKv16(k + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), LoadKv16(k + i + 16), a1);
  }
  for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LoadKv16(k + i), a0);
  s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#else
  float acc[16] = {};
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += q[i + j] * ToF(k[i + j]);
  for (int j = 0; j < 16; ++j) s += acc[j];
#endif
  for (; i < n; ++i) s += q[i] * ToF(k[i]);
  return s;
}

template <typename KvT>
inline void Axpy(float* __restrict out, float w, const KvT* __restrict v, int n) {
  int i = 0;
#if defined(__AVX512F__)
  const __m512 wv = _mm512_set1_ps(w);
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_fmadd_ps(wv, LoadKv16(v + i), _mm512_loadu_ps(out + i)));
#endif
  for (; i < n; ++i) out[i] += w * ToF(v[i]);
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
  // Units are dealt round-robin: causal rows grow in cost, so contiguous chunks would leave the
  // thread with the last rows doing most of a prefill's work.
  const int n_threads = pool.size();
  pool.RunOnAll([&](int thread) {
    std::vector<float> scores;
    for (int64_t u = thread; u < n_units; u += n_threads) {
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
      // Walk the block table one block at a time (no division per position).
      for (int j = 0; j < n;) {
        const int t = start + j;
        const int off = t % a.block_size;
        const int run = std::min(a.block_size - off, n - j);
        const KvT* kb = kp + ((int64_t)seq.block_table[t / a.block_size] * a.block_size + off) * token_stride + kvh * hd;
        for (int r = 0; r < run; ++r, ++j) {
          scores[j] = p.scale * Dot(q, kb + r * token_stride, hd);
          mx = std::max(mx, scores[j]);
        }
      }
      float sum = 0;
      for (int j = 0; j < n; ++j) {
        scores[j] = std::exp(scores[j] - mx);
        sum += scores[j];
      }
      const float inv = 1.0f / sum;
      std::fill(out, out + hd, 0.0f);
      for (int j = 0; j < n;) {
        const int t = start + j;
        const int off = t % a.block_size;
        const int run = std::min(a.block_size - off, n - j);
        const KvT* vb = vp + ((int64_t)seq.block_table[t / a.block_size] * a.block_size + off) * token_stride + kvh * hd;
        for (int r = 0; r < run; ++r, ++j) Axpy(out, scores[j] * inv, vb + r * token_stride, hd);
      }
    }
  });
}

inline void Dispatch(const AttentionArgs& a, ThreadPool& pool) {
  if (a.kv_dtype == DType::kBF16) Run<uint16_t>(a, pool);
  else Run<float>(a, pool);
}

}  // namespace petrel::kernels::cpu::impl
