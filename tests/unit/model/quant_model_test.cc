// The qwen3-tiny fixture quantized at load (--quant int8 / q4_0 / q4_0:pure / int4) on the CPU: the
// AVX-512 backend, which packs Q8_0 / Q4_0 / Q4_1 weights at upload (kernels/cpu/quant_matmul_packed.h),
// gives the same logits as the plain-layout kernel (PETREL_ISA=avx2, no packing) up to f32
// summation order and its knock-on effects, for a prompt (prefill) and decode steps; and the
// quantized logits stay close to the unquantized model's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../golden/golden_check.h"
#include "kernels/cpu/isa.h"
#include "model/model.h"

namespace petrel::model {
namespace {

const std::string kFixture = std::string(PETREL_FIXTURES) + "/qwen3-tiny";

// Logits of a 13-token prompt (every row) and of 3 decode steps after it.
std::vector<float> RunModel(const std::string& quant, const char* isa) {
  setenv("PETREL_ISA", isa, 1);
  auto m = LoadModel(kFixture, LoadOptions{.n_threads = 2, .quant = quant});
  unsetenv("PETREL_ISA");
  EXPECT_TRUE(m.ok()) << m.error().ToString();
  if (!m.ok()) return {};
  golden::Runner r(m->get(), nullptr, 64);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 13; ++i) prompt.push_back(100 + 997 * i % 5000);
  std::vector<float> all = r.Run(prompt, 0);
  for (int s = 0; s < 3; ++s) {
    std::vector<float> step = r.Run({4242 + s}, 13 + s);
    all.insert(all.end(), step.begin(), step.end());
  }
  return all;
}

class QuantModel : public testing::TestWithParam<std::string> {};

TEST_P(QuantModel, PackedKernelMatchesPlainKernel) {
  if (kernels::cpu::DetectIsa() < kernels::cpu::Isa::kAvx512) GTEST_SKIP() << "no AVX-512";
  const std::vector<float> packed = RunModel(GetParam(), "avx512");
  const std::vector<float> plain = RunModel(GetParam(), "avx2");
  ASSERT_EQ(packed.size(), plain.size());
  ASSERT_FALSE(packed.empty());
  // Both compute the same integer dot products; the f32 sums differ in order, and the plain run
  // also uses other attention / activation code, so an int8 activation code can round the other
  // way in a later layer. On this random fixture such a flip moves the logits by up to 0.7% RMS
  // (measured: scalar vs AVX2 builds at int8, AVX2 vs AVX-512 at q4_0:pure, while the packed
  // AVX-512 run agrees with one of the plain ones to 2e-7 in each case). The kernels themselves
  // are checked exactly in tests/unit/kernels/quant_kernels_test.cc.
  double num = 0, den = 0;
  for (size_t i = 0; i < packed.size(); ++i) {
    ASSERT_TRUE(std::isfinite(packed[i])) << i;
    num += ((double)packed[i] - plain[i]) * ((double)packed[i] - plain[i]);
    den += (double)plain[i] * plain[i];
  }
  EXPECT_LT(std::sqrt(num / den), 2e-2) << GetParam();
}

TEST_P(QuantModel, CloseToUnquantized) {
  const std::vector<float> q = RunModel(GetParam(), "avx512");
  const std::vector<float> f = RunModel("", "avx512");
  ASSERT_EQ(q.size(), f.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    num += ((double)q[i] - f[i]) * ((double)q[i] - f[i]);
    den += (double)f[i] * f[i];
  }
  // Relative RMS error of the logits: ~1e-2 at 8 bits, ~1e-1 at 4 bits on this random fixture.
  EXPECT_LT(std::sqrt(num / den), GetParam() == "int8" ? 0.05 : 0.35) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Types, QuantModel, testing::Values("int8", "q4_0", "q4_0:pure", "int4"),
                         [](const testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           for (char& c : n)
                             if (c == ':') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace petrel::model
