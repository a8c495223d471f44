// The AVX-512 elementwise kernels (kernels/cpu/elementwise.h) against the portable code they
// replace, bit for bit: odd lengths (tails), and the special values of the bf16 rounding.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/isa.h"
#include "test_random.h"

namespace petrel::kernels {
namespace {

bool HaveAvx512() { return cpu::DetectIsa() >= cpu::Isa::kAvx512; }

using test::Random;

TEST(Elementwise, RmsNormRowAvx512MatchesScalarBitForBit) {
  if (!HaveAvx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (int64_t d : {1, 7, 16, 17, 31, 64, 128, 1000, 1024, 3072, 4099}) {
    const auto x = Random(d, 1 + (uint32_t)d, 3.0f), w = Random(d, 2 + (uint32_t)d, 1.0f);
    std::vector<float> want(d), got(d, NAN), inplace = x;
    cpu::RmsNormRow(x.data(), w.data(), want.data(), d, 1e-6f);
    cpu::RmsNormRowAvx512(x.data(), w.data(), got.data(), d, 1e-6f);
    cpu::RmsNormRowAvx512(inplace.data(), w.data(), inplace.data(), d, 1e-6f);  // out aliases x
    for (int64_t k = 0; k < d; ++k) {
      ASSERT_EQ(std::bit_cast<uint32_t>(want[k]), std::bit_cast<uint32_t>(got[k])) << "d " << d << " k " << k;
      ASSERT_EQ(std::bit_cast<uint32_t>(want[k]), std::bit_cast<uint32_t>(inplace[k])) << "d " << d << " k " << k;
    }
  }
}

TEST(Elementwise, F32ToBF16Avx512MatchesScalarBitForBit) {
  if (!HaveAvx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::vector<float> v = Random(997, 7, 100.0f);
  const float inf = std::numeric_limits<float>::infinity();
  // Ties (round to even both ways), the largest finite values (round up to infinity), denormals,
  // signed zeros, infinities and NaNs (quiet and signalling, with payloads in the low bits).
  for (uint32_t bits : {0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0xff7fffffu, 0x00000001u, 0x807fffffu,
                        0x00008000u, 0x80000000u, 0x7fc00000u, 0x7f800001u, 0xffc00001u, 0x7fbfffffu})
    v.push_back(std::bit_cast<float>(bits));
  v.push_back(inf), v.push_back(-inf), v.push_back(0.0f);
  for (size_t n : {v.size(), (size_t)16, (size_t)5, (size_t)0}) {
    std::vector<uint16_t> got(n + 1, 0xABCD);
    cpu::F32ToBF16Avx512(v.data() + (v.size() - n), got.data(), (int64_t)n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(F32ToBF16(v[v.size() - n + i]), got[i]) << "n " << n << " i " << i;
    EXPECT_EQ(got[n], 0xABCD) << "wrote past n = " << n;
  }
}

}  // namespace
}  // namespace petrel::kernels
