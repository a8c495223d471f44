// The op-timing decorator (kernels/op_profile.h): results identical to the wrapped backend, every
// call counted under its op name (matmuls by weight shape), and the time between ops reported.
#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

#include "kernels/backend.h"
#include "kernels/op_profile.h"

namespace petrel::kernels {
namespace {

const OpTime* Find(const std::vector<OpTime>& v, const std::string& op) {
  for (const OpTime& t : v)
    if (t.op == op) return &t;
  return nullptr;
}

TEST(OpProfile, ForwardsAndCountsEveryOp) {
  OpProfile* prof = nullptr;
  std::unique_ptr<Backend> plain = CreateCpuBackend(2, MatMulPrecision::kAuto);
  std::unique_ptr<Backend> timed = WithOpProfile(CreateCpuBackend(2, MatMulPrecision::kAuto), &prof);
  ASSERT_NE(prof, nullptr);
  EXPECT_STREQ(timed->name(), plain->name());

  const int64_t K = 96, N = 40;
  std::mt19937 rng(3);
  std::normal_distribution<float> d;
  Tensor x(DType::kF32, {1, K}), w(DType::kF32, {N, K});
  for (int64_t i = 0; i < K; ++i) x.As<float>()[i] = d(rng);
  for (int64_t i = 0; i < N * K; ++i) w.As<float>()[i] = d(rng);
  Tensor a(DType::kF32, {1, N}), b(DType::kF32, {1, N});
  prof->Reset();
  plain->MatMul(a, x, w, TensorView{});
  timed->MatMul(b, x, w, TensorView{});
  timed->MatMul(b, x, w, TensorView{});
  for (int64_t i = 0; i < N; ++i) EXPECT_EQ(a.As<float>()[i], b.As<float>()[i]) << i;
  const MatMulJob jobs[] = {{b, w, TensorView{}}, {a, w, TensorView{}}};
  timed->MatMuls(x, jobs);
  timed->Add(a, b);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // host time outside every op

  const std::vector<OpTime> s = prof->Snapshot();
  const OpTime* mm = Find(s, "MatMul 96x40 F32");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->calls, 2);
  EXPECT_GT(mm->seconds, 0.0);
  const OpTime* mms = Find(s, "MatMuls 40+40 K96 F32");
  ASSERT_NE(mms, nullptr);
  EXPECT_EQ(mms->calls, 1);
  const OpTime* add = Find(s, "Add");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->calls, 1);
  const OpTime* between = Find(s, "(between ops)");
  ASSERT_NE(between, nullptr);
  EXPECT_GE(between->seconds, 0.015);
  for (size_t i = 1; i < s.size(); ++i) EXPECT_GE(s[i - 1].seconds, s[i].seconds);  // largest first

  prof->Reset();
  const std::vector<OpTime> empty = prof->Snapshot();
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].op, "(between ops)");
}

}  // namespace
}  // namespace petrel::kernels
