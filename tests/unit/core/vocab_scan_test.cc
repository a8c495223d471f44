// The host sampler's vocabulary scans (core/vocab_scan.h) against the plain algorithms they
// replace: std::max_element, a partial sort of every index, std::exp, a sequential draw.
#include "core/vocab_scan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "test_random.h"

namespace petrel::vocab_scan {
namespace {

// Vocabularies of odd sizes (tails shorter than a lane, a block), a Qwen3-sized one, and values
// with many ties (rounded to a coarse grid).
std::vector<std::vector<float>> Cases() {
  std::vector<std::vector<float>> cases;
  uint32_t seed = 1;
  for (size_t n : {1, 2, 15, 16, 17, 63, 65, 1000, 4097, 151936}) {
    cases.push_back(test::Random(n, seed++, 3.0f));
    std::vector<float> tied = test::Random(n, seed++, 3.0f);
    for (float& x : tied) x = std::round(x * 2) / 2;
    cases.push_back(tied);
  }
  return cases;
}

TEST(VocabScan, ArgMaxIsMaxElement) {
  for (std::vector<float> v : Cases()) {
    EXPECT_EQ(ArgMaxFirst(v), std::max_element(v.begin(), v.end()) - v.begin()) << v.size();
    if (v.size() < 3) continue;
    // NaNs are skipped unless the first value is one, as std::max_element does.
    v[1] = NAN;
    EXPECT_EQ(ArgMaxFirst(v), std::max_element(v.begin(), v.end()) - v.begin()) << v.size();
    v[0] = NAN;
    EXPECT_EQ(ArgMaxFirst(v), 0);
    v.back() = INFINITY;
    v[0] = 0;
    EXPECT_EQ(ArgMaxFirst(v), (int64_t)v.size() - 1);
  }
  EXPECT_EQ(ArgMaxFirst({}), 0);
}

TEST(VocabScan, TopKIsAPartialSortOfEveryIndex) {
  for (std::vector<float> v : Cases()) {
    v[v.size() / 2] = NAN;  // never selected
    for (int64_t k : {1, 2, 5, 20, 40, 1024, 5000}) {
      std::vector<int32_t> want(v.size());
      std::iota(want.begin(), want.end(), 0);
      want.erase(std::remove_if(want.begin(), want.end(), [&](int32_t i) { return std::isnan(v[i]); }),
                 want.end());
      const int64_t kk = std::min<int64_t>(k, (int64_t)want.size());
      std::partial_sort(want.begin(), want.begin() + kk, want.end(),
                        [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
      want.resize(kk);
      std::vector<int32_t> got = TopK(v, k);
      got.resize(std::min(got.size(), want.size()));
      EXPECT_EQ(got, want) << "n=" << v.size() << " k=" << k;
    }
  }
}

TEST(VocabScan, ExpNonPositiveIsAccurate) {
  float worst = 0;
  for (float x = 0.0f; x > -86.0f; x -= 0.00731f) {
    const double want = std::exp((double)x);
    worst = std::max(worst, (float)(std::abs(ExpNonPositive(x) - want) / want));
  }
  EXPECT_LT(worst, 3e-7f);
  EXPECT_EQ(ExpNonPositive(0.0f), 1.0f);
  EXPECT_EQ(ExpNonPositive(-100.0f), 0.0f);
  EXPECT_EQ(ExpNonPositive(-INFINITY), 0.0f);
}

TEST(VocabScan, WeightsAndDrawWalkTheCumulativeSums) {
  for (const std::vector<float>& v : Cases()) {
    const int64_t n = (int64_t)v.size();
    const float mx = MaxValue(v.data(), n), inv_t = 1.0f / 0.7f;
    std::vector<float> w(n);
    std::vector<double> bs((n + kScanBlock - 1) / kScanBlock);
    const double total = ExpWeights(v.data(), n, mx, inv_t, w.data(), bs.data());
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_FLOAT_EQ(w[i], ExpNonPositive((v[i] - mx) * inv_t));
      sum += w[i];
    }
    EXPECT_NEAR(total, sum, 1e-6 * sum);  // float lanes inside a block
    // Draws at the start, inside and at the end of intervals land where a sequential walk does.
    for (double f : {0.0, 1e-9, 0.25, 0.5, 0.75, 0.999999}) {
      const double r = f * total;
      double acc = 0;
      int64_t want = n - 1;
      for (int64_t i = 0; i < n; ++i) {
        acc += w[i];
        if (r < acc) {
          want = i;
          break;
        }
      }
      const int64_t got = DrawIndex(w.data(), n, bs.data(), r);
      // Rounding of the block sums may move a draw within ~1e-12 of a boundary to a neighbour.
      EXPECT_LE(std::abs(got - want), 1) << "n=" << n << " f=" << f;
      EXPECT_GT(w[got], 0.0f);
    }
  }
}

}  // namespace
}  // namespace petrel::vocab_scan
