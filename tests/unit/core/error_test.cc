#include "core/error.h"

#include <gtest/gtest.h>

namespace petrel {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd: ", x);
  return x / 2;
}

Result<int> Quarter(int x) {
  PETREL_TRY(int h, Half(x));
  PETREL_TRY(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  PETREL_TRY(Half(x));
  return OkStatus();
}

TEST(Result, PropagatesValueAndError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message, "odd: 3");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_FALSE(CheckEven(5).ok());
}

TEST(Result, WithContextPrefixes) {
  Error e = InvalidFormat("bad").WithContext("file.bin");
  EXPECT_EQ(e.message, "file.bin: bad");
}

TEST(Check, AbortsWithMessage) {
  EXPECT_DEATH({ PETREL_CHECK(1 == 2) << "context " << 42; }, "check failed: 1 == 2 context 42");
}

}  // namespace
}  // namespace petrel
