// Scans over a vocabulary's logits for the host sampler (vocab_scan.h).
#include "core/vocab_scan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

namespace petrel::vocab_scan {

// The loops over every logit get AVX-512 and AVX2 clones (GCC function multiversioning, picked at
// load time); inside them independent lanes and no calls, so that each clone is vectorised.
#if defined(__x86_64__) && defined(__gnu_linux__)
#define PETREL_VOCAB_SCAN __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PETREL_VOCAB_SCAN
#endif

// The largest of x[0, n) (n a multiple of kLanes) and `init`, NaNs skipped: 16 running maxima,
// then one. Inlined into each clone below.
inline float LanesMax(const float* x, int64_t n, float init) {
  float m[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) m[l] = init;
  for (int64_t i = 0; i < n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
  float best = init;
  for (int64_t l = 0; l < kLanes; ++l) best = m[l] > best ? m[l] : best;
  return best;
}

PETREL_VOCAB_SCAN float MaxValue(const float* v, int64_t n) {
  const float first = v[0];
  if (first != first) return first;
  const int64_t body = n / kLanes * kLanes;
  float best = LanesMax(v, body, first);
  for (int64_t i = body; i < n; ++i) best = v[i] > best ? v[i] : best;
  return best;
}

int64_t ArgMaxFirst(std::span<const float> v) {
  if (v.empty()) return 0;
  const float mx = MaxValue(v.data(), (int64_t)v.size());
  if (mx != mx) return 0;
  return std::find(v.begin(), v.end(), mx) - v.begin();
}

// Per block: 16 lane sums, added up.
PETREL_VOCAB_SCAN double ExpWeights(const float* v, int64_t n, float mx, float inv_t, float* w,
                                     double* block_sum) {
  double total = 0;
  for (int64_t b = 0; b * kScanBlock < n; ++b) {
    const int64_t i0 = b * kScanBlock, i1 = std::min(n, i0 + kScanBlock);
    float s[kLanes] = {};  // 4 weights (<= 1) a lane: float keeps the loop vectorised
    int64_t i = i0;
    for (; i + kLanes <= i1; i += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) {
        w[i + l] = ExpNonPositive((v[i + l] - mx) * inv_t);
        s[l] += w[i + l];
      }
    double bs = 0;
    for (int64_t l = 0; l < kLanes; ++l) bs += s[l];
    for (; i < i1; ++i) bs += (w[i] = ExpNonPositive((v[i] - mx) * inv_t));
    block_sum[b] = bs;
    total += bs;
  }
  return total;
}

// A walk over the block sums, then over the block's weights.
int64_t DrawIndex(const float* w, int64_t n, const double* block_sum, double r) {
  double acc = 0;
  for (int64_t b = 0; b * kScanBlock < n; ++b) {
    if (r >= acc + block_sum[b] && (b + 1) * kScanBlock < n) {
      acc += block_sum[b];
      continue;
    }
    const int64_t i0 = b * kScanBlock, i1 = std::min(n, i0 + kScanBlock);
    int64_t last = i0;
    for (int64_t i = i0; i < i1; ++i) {
      if (w[i] <= 0) continue;
      last = i;
      acc += w[i];
      if (r < acc) return i;
    }
    return last;  // rounding at the block's end
  }
  return n - 1;
}

// Per block of `block` values (a multiple of kLanes), the largest (NaNs skipped; -inf for a block
// of NaNs).
PETREL_VOCAB_SCAN void BlockMaxima(const float* v, int64_t block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b) out[b] = LanesMax(v + b * block, block, -INFINITY);
}

// With blocks enough (at least 4 k), only the values >= the k-th largest block maximum are sorted:
// k blocks hold a value at least that large, so the k-th largest value is too, and every index of
// the top k (ties included) passes.
std::vector<int32_t> TopK(std::span<const float> v, int64_t k) {
  const int64_t n = (int64_t)v.size();
  k = std::min(k, n);
  auto by_value = [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); };
  std::vector<int32_t> idx;
  int64_t block = 4 * kLanes;
  while (block > kLanes && n / block < 4 * k) block /= 2;
  const int64_t n_blocks = n / block;
  if (k > 0 && n_blocks >= 4 * k) {
    std::vector<float> maxima(n_blocks);
    BlockMaxima(v.data(), block, n_blocks, maxima.data());
    std::nth_element(maxima.begin(), maxima.begin() + (k - 1), maxima.end(), std::greater<float>());
    const float tau = maxima[k - 1];
    for (int64_t i = 0; i < n; ++i)
      if (v[i] >= tau) idx.push_back((int32_t)i);
  } else {
    for (int64_t i = 0; i < n; ++i)
      if (v[i] == v[i]) idx.push_back((int32_t)i);  // NaNs have no place in the order
  }
  k = std::min<int64_t>(k, (int64_t)idx.size());
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), by_value);
  idx.resize(k);
  return idx;
}

}  // namespace petrel::vocab_scan
