// RoPE tables (model::BuildRopeTable) against the published formulas evaluated here in double
// precision, and against the inv_freq / attention_scaling transformers computed for the fixture
// models (tests/fixtures/models/*/refs.json -> "rope", written by tools/gen_model_refs.py).
#include "model/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numbers>

#include "core/json_util.h"
#include "formats/hf_config.h"

namespace petrel::model {
namespace {

using formats::ModelConfig;
using formats::RopeType;

ModelConfig Config(int head_dim, double theta, RopeType type, double factor = 1.0) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope.type = type;
  c.rope.theta = theta;
  c.rope.factor = factor;
  return c;
}

// theta^(-2i/d): the unscaled frequencies (Su et al., RoFormer).
std::vector<double> BaseFreqs(int dim, double theta) {
  std::vector<double> f(dim / 2);
  for (int i = 0; i < dim / 2; ++i) f[i] = 1.0 / std::pow(theta, 2.0 * i / dim);
  return f;
}

void ExpectClose(const std::vector<float>& got, const std::vector<double>& want, double rel,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], rel * std::abs(want[i])) << what << " inv_freq[" << i << "]";
}

TEST(Rope, DefaultIsThetaToTheMinus2iOverD) {
  for (int dim : {16, 64, 128}) {
    for (double theta : {10000.0, 1e6}) {
      auto t = BuildRopeTable(Config(dim, theta, RopeType::kDefault));
      ExpectClose(t.inv_freq, BaseFreqs(dim, theta), 1e-6, "default");
      EXPECT_EQ(t.attention_scaling, 1.0f);
    }
  }
}

TEST(Rope, LinearDividesByFactor) {
  auto t = BuildRopeTable(Config(64, 10000.0, RopeType::kLinear, 4.0));
  auto want = BaseFreqs(64, 10000.0);
  for (double& f : want) f /= 4.0;
  ExpectClose(t.inv_freq, want, 1e-6, "linear");
  EXPECT_EQ(t.attention_scaling, 1.0f);
}

// Llama 3.1 ("apply_scaling" in Meta's reference code): wavelengths shorter than
// original_ctx / high_freq_factor are kept, longer than original_ctx / low_freq_factor divided by
// the factor, and a linear blend in 1 / wavelength between.
TEST(Rope, Llama3MatchesMetaReference) {
  ModelConfig c = Config(128, 500000.0, RopeType::kLlama3, 8.0);
  c.rope.low_freq_factor = 1.0;
  c.rope.high_freq_factor = 4.0;
  c.rope.original_max_position = 8192;
  std::vector<double> want;
  int kept = 0, divided = 0, blended = 0;
  for (double f : BaseFreqs(128, 500000.0)) {
    const double wavelen = 2 * std::numbers::pi / f;
    const double low_wavelen = 8192 / 1.0, high_wavelen = 8192 / 4.0;
    if (wavelen < high_wavelen) {
      want.push_back(f);
      ++kept;
    } else if (wavelen > low_wavelen) {
      want.push_back(f / 8.0);
      ++divided;
    } else {
      const double smooth = (8192 / wavelen - 1.0) / (4.0 - 1.0);
      want.push_back((1 - smooth) * f / 8.0 + smooth * f);
      ++blended;
    }
  }
  ASSERT_GT(kept, 0);  // the test exercises all three bands
  ASSERT_GT(divided, 0);
  ASSERT_GT(blended, 0);
  auto t = BuildRopeTable(c);
  ExpectClose(t.inv_freq, want, 1e-5, "llama3");
  EXPECT_EQ(t.attention_scaling, 1.0f);
}

// YaRN (Peng et al. 2023, eqs. for the ramp and mscale), as transformers implements it:
// correction range from beta_fast / beta_slow rotations over the original context, floored/ceiled
// when truncate, a linear ramp between extrapolated and interpolated frequencies, and
// attention_scaling = 0.1 ln(factor) + 1 (or the mscale ratio, or the explicit attention_factor).
std::vector<double> YarnFreqs(int dim, double theta, double factor, double orig, double beta_fast,
                              double beta_slow, bool truncate) {
  auto corr = [&](double rot) {
    return dim * std::log(orig / (rot * 2 * std::numbers::pi)) / (2 * std::log(theta));
  };
  double low = corr(beta_fast), high = corr(beta_slow);
  if (truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, dim - 1.0);
  if (low == high) high += 0.001;
  std::vector<double> out;
  const auto base = BaseFreqs(dim, theta);
  for (int i = 0; i < dim / 2; ++i) {
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double extrap_weight = 1 - ramp;
    out.push_back(base[i] / factor * (1 - extrap_weight) + base[i] * extrap_weight);
  }
  return out;
}

TEST(Rope, YarnMatchesPaperFormulas) {
  ModelConfig c = Config(128, 1e6, RopeType::kYarn, 4.0);
  c.rope.original_max_position = 32768;
  auto t = BuildRopeTable(c);
  ExpectClose(t.inv_freq, YarnFreqs(128, 1e6, 4.0, 32768, 32, 1, true), 1e-5, "yarn");
  EXPECT_NEAR(t.attention_scaling, 0.1 * std::log(4.0) + 1.0, 1e-6);

  c.rope.truncate = false;
  c.rope.beta_fast = 16;
  c.rope.beta_slow = 2;
  t = BuildRopeTable(c);
  ExpectClose(t.inv_freq, YarnFreqs(128, 1e6, 4.0, 32768, 16, 2, false), 1e-5, "yarn untruncated");

  c.rope.attention_factor = 1.25;  // explicit value wins
  EXPECT_FLOAT_EQ(BuildRopeTable(c).attention_scaling, 1.25f);

  c.rope.attention_factor = 0;  // DeepSeek style: ratio of two mscales
  c.rope.mscale = 1.0;
  c.rope.mscale_all_dim = 0.5;
  const double ln = std::log(4.0);
  EXPECT_NEAR(BuildRopeTable(c).attention_scaling, (0.1 * ln + 1) / (0.05 * ln + 1), 1e-6);
}

// The tables transformers computed (rotary_emb.inv_freq, attention_scaling) for every fixture
// model, from the same config.json petrel parses.
TEST(Rope, FixtureModelsMatchTransformers) {
  const std::filesystem::path root = std::string(PETREL_FIXTURES) + "/models";
  if (!std::filesystem::exists(root)) GTEST_SKIP() << "no model fixtures";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(root)) {
    if (!std::filesystem::exists(e.path() / "refs.json")) continue;
    auto refs = ReadJsonFile((e.path() / "refs.json").string());
    ASSERT_TRUE(refs.ok()) << refs.error().ToString();
    if (!refs->contains("rope")) continue;
    auto c = formats::LoadHfConfig(e.path().string());
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    const Json& want = (*refs)["rope"];
    auto t = BuildRopeTable(*c);
    ExpectClose(t.inv_freq, want["inv_freq"].get<std::vector<double>>(), 1e-6, e.path().string());
    EXPECT_NEAR(t.attention_scaling, want["attention_scaling"].get<double>(), 1e-6) << e.path();
    ++n;
  }
  EXPECT_GE(n, 2);
}

}  // namespace
}  // namespace petrel::model
