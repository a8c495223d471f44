// Device sampling (Backend::SampleRows, kernels/cuda/sample.cu) against the host sampler's
// semantics (runtime/sampler.cc). Label `gpu`: skipped without a CUDA build or a GPU.
//  - greedy: exactly the first maximal logit (Backend::ArgMax and the host), ties included;
//  - top_k = 1 at any temperature is greedy;
//  - the distribution of many seeded draws matches softmax(l / T) restricted to the top-k /
//    top-p / min-p survivors that the host sampler keeps (each token's count within 5 standard
//    deviations of its expectation, and never a token outside the survivors);
//  - the same seed and step give the same token, other seeds other tokens;
//  - logprobs (chosen and top n) match the host's log-softmax of the raw logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/backend.h"
#include "runtime/sampler.h"
#include "test_random.h"

namespace petrel::runtime {
namespace {

using kernels::SampleResult;
using kernels::SampleSpec;

using test::Random;

// The host sampler's truncation, written out plainly (candidates sorted by logit, ties to the
// smaller id; top-k; top-p normalised over the top-k; min-p against the best): the probability of
// every token under `p`.
std::vector<double> HostProbs(const std::vector<float>& l, const SamplingParams& p) {
  const int V = (int)l.size();
  std::vector<int> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return l[a] > l[b]; });
  const double mx = l[idx[0]];
  std::vector<double> w(V);
  for (int i = 0; i < V; ++i) w[i] = std::exp((l[idx[i]] - mx) / p.temperature);
  const int k = (p.top_k > 0 && p.top_k < V) ? p.top_k : V;
  double norm = 0;
  for (int i = 0; i < (k < V ? k : V); ++i) norm += w[i];
  int n = k;
  if (p.top_p < 1.0f) {
    double cum = 0;
    for (int i = 0; i < n; ++i) {
      cum += w[i] / norm;
      if (cum >= p.top_p) {
        n = i + 1;
        break;
      }
    }
  }
  if (p.min_p > 0) {
    int keep = 1;
    while (keep < n && w[keep] >= p.min_p * w[0]) ++keep;
    n = keep;
  }
  double z = 0;
  for (int i = 0; i < n; ++i) z += w[i];
  std::vector<double> probs(V, 0.0);
  for (int i = 0; i < n; ++i) probs[idx[i]] = w[i] / z;
  return probs;
}

SampleSpec SpecOf(const SamplingParams& p, uint64_t seed, uint64_t step, int top_logprobs = -1) {
  return SampleSpec{.temperature = p.temperature, .top_k = p.top_k, .top_p = p.top_p,
                    .min_p = p.min_p, .seed = seed, .step = step, .top_logprobs = top_logprobs};
}

class CudaSampler : public testing::Test {
 protected:
  void SetUp() override {
    auto b = kernels::CreateCudaBackend(0);
    if (!b.ok()) GTEST_SKIP() << b.error().ToString();
    be_ = std::move(b).value();
  }
  // Rows [R, V] in device memory.
  Tensor Upload(const std::vector<float>& host, int64_t R, int64_t V) {
    return be_->UploadOwned(TensorView{const_cast<float*>(host.data()), DType::kF32, Shape{R, V}});
  }
  std::vector<SampleResult> Sample(const Tensor& lg, const std::vector<SampleSpec>& specs) {
    std::vector<SampleResult> out(specs.size());
    EXPECT_TRUE(be_->SampleRows(lg, specs, out));
    return out;
  }
  std::unique_ptr<kernels::Backend> be_;
};

// Rows with a repeated maximum (the first must win), an all-equal row, and plain random rows.
std::vector<float> TieRows(int R, int V, uint32_t seed) {
  std::vector<float> l = Random((size_t)R * V, seed, 2.0f);
  for (int r = 0; r < R; ++r) {
    float* row = l.data() + (size_t)r * V;
    if (r % 3 == 0) row[V / 2] = row[V - 1] = row[V / 3] = 20.0f;  // first is V / 3
    if (r == 1) std::fill(row, row + V, 0.5f);
  }
  return l;
}

int32_t FirstMax(const float* row, int V) { return (int32_t)(std::max_element(row, row + V) - row); }

TEST_F(CudaSampler, GreedyIsExactlyArgMax) {
  for (int V : {1003, 151936}) {
    const int R = 7;
    const auto l = TieRows(R, V, 11);
    Tensor lg = Upload(l, R, V);
    std::vector<SampleSpec> specs(R);  // temperature 0
    auto out = Sample(lg, specs);
    std::vector<int32_t> ids(R);
    be_->ArgMax(lg, ids.data());
    for (int r = 0; r < R; ++r) {
      EXPECT_EQ(out[r].token, FirstMax(l.data() + (size_t)r * V, V)) << "V " << V << " row " << r;
      EXPECT_EQ(out[r].token, ids[r]) << "V " << V << " row " << r;
    }
  }
}

TEST_F(CudaSampler, TopKOneIsGreedyAtAnyTemperature) {
  const int R = 9, V = 4099;
  const auto l = TieRows(R, V, 12);
  Tensor lg = Upload(l, R, V);
  for (float t : {0.3f, 1.0f, 2.5f}) {
    SamplingParams p;
    p.temperature = t;
    p.top_k = 1;
    std::vector<SampleSpec> specs;
    for (int r = 0; r < R; ++r) specs.push_back(SpecOf(p, 1000 + r, r));
    auto out = Sample(lg, specs);
    for (int r = 0; r < R; ++r)
      EXPECT_EQ(out[r].token, FirstMax(l.data() + (size_t)r * V, V)) << "T " << t << " row " << r;
  }
}

struct DistCase {
  const char* name;
  float temperature;
  int top_k;
  float top_p;
  float min_p;
};

TEST_F(CudaSampler, DistributionMatchesTruncatedSoftmax) {
  const int V = 997, R = 8192, kLaunches = 3;
  const std::vector<float> row = Random(V, 13, 2.0f);
  std::vector<float> rows;
  for (int r = 0; r < R; ++r) rows.insert(rows.end(), row.begin(), row.end());
  Tensor lg = Upload(rows, R, V);
  const DistCase cases[] = {
      {"temperature", 0.7f, 0, 1.0f, 0.0f},        {"top_k", 1.0f, 10, 1.0f, 0.0f},
      {"top_p", 1.3f, 0, 0.8f, 0.0f},              {"min_p", 1.0f, 0, 1.0f, 0.1f},
      {"qwen-like", 0.6f, 20, 0.95f, 0.05f},       {"top_k+top_p", 1.0f, 50, 0.5f, 0.0f},
  };
  for (const DistCase& c : cases) {
    SamplingParams p;
    p.temperature = c.temperature;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    const std::vector<double> want = HostProbs(row, p);
    // The reference really is the host sampler's: its draws stay inside the survivors.
    SamplerState st;
    st.Init(p, {}, V, 5);
    for (int i = 0; i < 2000; ++i) {
      std::vector<float> scratch = row;
      TokenOutput o;
      runtime::Sample(scratch, p, st, -1, o);
      ASSERT_GT(want[o.token], 0.0) << c.name << ": host drew " << o.token;
    }
    std::vector<int64_t> count(V, 0);
    for (int launch = 0; launch < kLaunches; ++launch) {
      std::vector<SampleSpec> specs;
      for (int r = 0; r < R; ++r) specs.push_back(SpecOf(p, 77, (uint64_t)launch * R + r));
      for (const SampleResult& s : Sample(lg, specs)) {
        ASSERT_GE(s.token, 0);
        ASSERT_LT(s.token, V);
        count[s.token]++;
      }
    }
    const double n = (double)R * kLaunches;
    int kept = 0;
    for (int t = 0; t < V; ++t) {
      if (want[t] == 0.0) {
        EXPECT_EQ(count[t], 0) << c.name << ": token " << t << " is not a survivor";
        continue;
      }
      ++kept;
      const double mean = n * want[t], sd = std::sqrt(n * want[t] * (1 - want[t]));
      EXPECT_LE(std::abs((double)count[t] - mean), 5 * sd + 2)
          << c.name << ": token " << t << " drawn " << count[t] << " times, expected " << mean;
    }
    std::printf("%s: %d survivors, %.0f draws\n", c.name, kept, n);
  }
}

TEST_F(CudaSampler, SameSeedSameTokensOtherSeedsOthers) {
  const int V = 151936, R = 64;
  const auto l = Random((size_t)R * V, 14, 1.0f);  // flat: many plausible tokens per row
  Tensor lg = Upload(l, R, V);
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.9f;
  std::vector<SampleSpec> a, b;
  for (int r = 0; r < R; ++r) {
    a.push_back(SpecOf(p, 42, r));
    b.push_back(SpecOf(p, 43, r));
  }
  const auto x = Sample(lg, a), y = Sample(lg, a), z = Sample(lg, b);
  int differ = 0;
  for (int r = 0; r < R; ++r) {
    EXPECT_EQ(x[r].token, y[r].token) << r;
    differ += x[r].token != z[r].token;
  }
  EXPECT_GT(differ, R / 2);
}

TEST_F(CudaSampler, LogprobsMatchHost) {
  const int V = 151936, R = 5;
  const auto l = TieRows(R, V, 15);
  Tensor lg = Upload(l, R, V);
  std::vector<SampleSpec> specs;
  for (int r = 0; r < R; ++r) {
    SamplingParams p;
    p.temperature = r % 2 ? 0.8f : 0.0f;
    p.top_k = r == 3 ? 40 : 0;
    specs.push_back(SpecOf(p, 9, r, r == 4 ? 0 : 20));
  }
  specs[2].skip = true;  // a row left to the host: untouched, the others unaffected
  const auto out = Sample(lg, specs);
  for (int r = 0; r < R; ++r) {
    if (r == 2) continue;
    const float* row = l.data() + (size_t)r * V;
    const double mx = *std::max_element(row, row + V);
    double s = 0;
    for (int i = 0; i < V; ++i) s += std::exp((double)row[i] - mx);
    const double lse = mx + std::log(s);
    EXPECT_NEAR(out[r].logprob, row[out[r].token] - lse, 1e-3) << r;
    // The host sampler's top entries (greedy run of the same row).
    SamplingParams g;
    g.temperature = 0;
    SamplerState st;
    st.Init(g, {}, V, 1);
    std::vector<float> scratch(row, row + V);
    TokenOutput host;
    runtime::Sample(scratch, g, st, specs[r].top_logprobs, host);
    ASSERT_EQ(out[r].top.size(), host.top.size()) << r;
    for (size_t j = 0; j < host.top.size(); ++j) {
      EXPECT_EQ(out[r].top[j].first, host.top[j].token) << r << " top " << j;
      EXPECT_NEAR(out[r].top[j].second, host.top[j].logprob, 1e-3) << r << " top " << j;
    }
    if (specs[r].temperature == 0.0f) {
      EXPECT_EQ(out[r].token, host.token) << r;
    }
  }
}

}  // namespace
}  // namespace petrel::runtime
