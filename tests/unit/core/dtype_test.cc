#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace petrel {
namespace {

TEST(DType, Bf16RoundTripIsExactForBf16Values) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float f = BF16ToF32((uint16_t)b);
    if (std::isnan(f)) continue;
    EXPECT_EQ(F32ToBF16(f), b);
  }
}

TEST(DType, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties go to even (1.0).
  EXPECT_EQ(F32ToBF16(1.0f + std::ldexp(1.0f, -8)), F32ToBF16(1.0f));
  EXPECT_EQ(BF16ToF32(F32ToBF16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.015625f);
}

TEST(DType, F16RoundTripIsExactForAllF16Values) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = F16ToF32((uint16_t)h);
    if (std::isnan(f)) continue;
    EXPECT_EQ(F32ToF16(f), h) << std::hex << h;
  }
}

TEST(DType, F16KnownValues) {
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0xc000), -2.0f);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // rounds to inf
  EXPECT_EQ(F32ToF16(1e-9f), 0x0000);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25) * 1.5f), 0x0001);  // rounds up to smallest subnormal
}

TEST(DType, ParseNames) {
  EXPECT_EQ(*ParseSafetensorsDType("BF16"), DType::kBF16);
  auto bad = ParseSafetensorsDType("F8_E4M3");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("F8_E4M3"), std::string::npos);
}

}  // namespace
}  // namespace petrel
