#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace petrel::runtime {
namespace {

std::vector<float> Logits() { return {1.0f, 3.0f, 2.0f, 0.5f, 2.9f, -1.0f}; }

int32_t Draw(SamplingParams p, SamplerState& st, std::vector<float> l = Logits(), int lp = -1) {
  TokenOutput out;
  Sample(l, p, st, lp, out);
  return out.token;
}

TEST(Sampler, GreedyPicksArgmaxAndLogprobsAreRaw) {
  SamplingParams p;
  p.temperature = 0;
  SamplerState st;
  st.Init(p, {}, 6, 1);
  TokenOutput out;
  auto l = Logits();
  Sample(l, p, st, 2, out);
  EXPECT_EQ(out.token, 1);
  double z = 0;
  for (float v : Logits()) z += std::exp(v);
  EXPECT_NEAR(out.logprob, 3.0 - std::log(z), 1e-5);
  ASSERT_EQ(out.top.size(), 2u);
  EXPECT_EQ(out.top[0].token, 1);
  EXPECT_EQ(out.top[1].token, 4);
}

TEST(Sampler, SameSeedSameSequence) {
  SamplingParams p;
  p.temperature = 1.5f;
  p.seed = 1234;
  SamplerState a, b;
  a.Init(p, {}, 6, 1);
  b.Init(p, {}, 6, 999);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(Draw(p, a), Draw(p, b));
}

TEST(Sampler, TopKOneIsGreedyAndTopPTruncates) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 1;
  SamplerState st;
  st.Init(p, {}, 6, 5);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Draw(p, st), 1);
  p.top_k = 0;
  p.top_p = 0.5f;  // token 1 alone has ~37%, with token 4 ~70%: only {1, 4} may appear
  for (int i = 0; i < 200; ++i) {
    int32_t t = Draw(p, st);
    EXPECT_TRUE(t == 1 || t == 4) << t;
  }
}

TEST(Sampler, MinPAndDistribution) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.min_p = 0.5f;  // keep p >= 0.5 * p_max: tokens 1, 4 (e^-0.1), 2 (e^-1 = 0.37 < 0.5: dropped)
  SamplerState st;
  st.Init(p, {}, 6, 9);
  std::map<int32_t, int> counts;
  for (int i = 0; i < 2000; ++i) counts[Draw(p, st)]++;
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_NEAR(counts[1] / 2000.0, std::exp(3.0) / (std::exp(3.0) + std::exp(2.9)), 0.05);
}

// A Qwen3-sized vocabulary (the block paths of core/vocab_scan.h): three tokens far above the
// rest, drawn at their softmax probabilities by plain temperature, top-k, top-p and min-p sampling.
TEST(Sampler, LargeVocabularyDrawsTheSoftmax) {
  std::vector<float> big(151936, -30.0f);
  for (size_t i = 0; i < big.size(); ++i) big[i] -= (float)(i % 97) * 0.01f;
  big[70001] = 2.0f;
  big[123] = 1.0f;
  big[151935] = 1.0f;  // ties with 123: both kept, same probability
  const double e = std::exp(1.0), z = e + 2.0;
  for (int mode = 0; mode < 4; ++mode) {
    SamplingParams p;
    p.temperature = 1.0f;
    if (mode == 1) p.top_k = 3;
    if (mode == 2) p.top_p = 0.9999f;
    if (mode == 3) p.min_p = 0.3f;
    SamplerState st;
    st.Init(p, {}, (int64_t)big.size(), 11 + mode);
    std::map<int32_t, int> counts;
    const int n = 3000;
    for (int i = 0; i < n; ++i) counts[Draw(p, st, big)]++;
    EXPECT_EQ(counts.size(), 3u) << "mode " << mode;
    EXPECT_NEAR(counts[70001] / (double)n, e / z, 0.04) << "mode " << mode;
    EXPECT_NEAR(counts[123] / (double)n, 1.0 / z, 0.04) << "mode " << mode;
    EXPECT_NEAR(counts[151935] / (double)n, 1.0 / z, 0.04) << "mode " << mode;
  }
}

TEST(Sampler, PenaltiesAndBias) {
  SamplingParams p;
  p.temperature = 0;
  p.logit_bias = {{5, 10.0f}};
  SamplerState st;
  st.Init(p, {}, 6, 1);
  EXPECT_EQ(Draw(p, st), 5);
  // Frequency penalty pushes away from the token already generated.
  SamplingParams q;
  q.temperature = 0;
  q.frequency_penalty = 2.0f;
  SamplerState s2;
  s2.Init(q, {}, 6, 1);
  EXPECT_EQ(Draw(q, s2), 1);
  EXPECT_EQ(Draw(q, s2), 4);  // 3 - 2 < 2.9
  // Repetition penalty (HF): prompt tokens' positive logits are divided.
  SamplingParams r;
  r.temperature = 0;
  r.repetition_penalty = 2.0f;
  SamplerState s3;
  std::vector<int32_t> prompt = {1};
  s3.Init(r, prompt, 6, 1);
  EXPECT_EQ(Draw(r, s3), 4);
}

TEST(Sampler, ValidationNamesTheField) {
  SamplingParams p;
  p.top_p = 0;
  auto st = ValidateSampling(p, 10);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("top_p"), std::string::npos);
  SamplingParams b;
  b.logit_bias = {{10, 1.0f}};
  EXPECT_FALSE(ValidateSampling(b, 10).ok());
}

}  // namespace
}  // namespace petrel::runtime
