// Scans over a vocabulary's logits for the host sampler (runtime/sampler.cc) and the CPU backend's
// ArgMax: the largest logit and its first index, exp-weights with per-block sums and a draw over
// them, and the k largest logits. Written so that the compiler vectorises them (independent
// lanes, no calls inside the loops), with AVX-512 / AVX2 clones chosen at load time: a sampled
// token over Qwen3's 151,936 logits cost 1.1-1.8 ms of one core with a double std::exp per logit
// and a comparator heap over every index (greedy: 0.11 ms), 10-20% of a CPU decode step; now
// 0.04-0.2 ms.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace petrel::vocab_scan {

constexpr int64_t kLanes = 16;
constexpr int64_t kScanBlock = 64;  // logits per block of ExpWeights' sums

// The largest of v[0, n), as std::max_element finds it: NaNs are skipped unless v[0] is one (then
// v[0] is returned). n >= 1.
float MaxValue(const float* v, int64_t n);
// std::max_element's index: the first position of the largest value (0 for an empty span).
int64_t ArgMaxFirst(std::span<const float> v);

// exp(x) for x <= 0 in float: 2^n p(r) with n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]
// and p the Taylor polynomial of e^r to r^7 (relative error below 2e-7); 0 below -87 (e^-87 is
// 1.6e-38, beneath any weight that could be drawn next to the maximum's 1).
inline float ExpNonPositive(float x) {
  const float c = x > -87.0f ? x : -87.0f;  // no branch: the loops over logits stay vectorised
  const float kMagic = 12582912.0f;         // 1.5 * 2^23: adding it rounds to an integer
  const float n = (c * 1.44269504088896341f + kMagic) - kMagic;
  const float r = (c - n * 0.693145751953125f) - n * 1.428606765330187e-06f;  // ln 2 in two parts
  float q = 1.0f / 5040;
  q = q * r + 1.0f / 720;
  q = q * r + 1.0f / 120;
  q = q * r + 1.0f / 24;
  q = q * r + 1.0f / 6;
  q = q * r + 0.5f;
  q = q * r + 1.0f;
  q = q * r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) << 23;  // 2^n, n in [-126, 0]
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x > -87.0f ? q * scale : 0.0f;  // NaN too
}

// w[i] = ExpNonPositive((v[i] - mx) * inv_t) for all n values (mx their maximum, so no exponent
// is positive) and block_sum[b] the sum (double) of block b's kScanBlock weights (the last block
// may be short; (n + kScanBlock - 1) / kScanBlock of them). Returns the sum of the block sums in
// order: the normaliser DrawIndex walks.
double ExpWeights(const float* v, int64_t n, float mx, float inv_t, float* w, double* block_sum);
// The index whose interval [weights before it, + its weight) holds r, for r in [0, total) as
// ExpWeights returned it (a zero weight is never drawn).
int64_t DrawIndex(const float* w, int64_t n, const double* block_sum, double r);
// The indices of the k largest values, largest first, ties to the smaller index: exactly a
// partial sort of every index by that order (NaNs are never among them).
std::vector<int32_t> TopK(std::span<const float> v, int64_t k);

}  // namespace petrel::vocab_scan
