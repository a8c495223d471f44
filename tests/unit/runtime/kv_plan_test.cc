// The KV-cache sizing arithmetic (runtime/kv_plan.h): host rules unchanged, device budget from
// --gpu-memory-utilization and free memory, the --kv-cache-memory cap, and the errors.
#include "runtime/kv_plan.h"

#include <gtest/gtest.h>

namespace petrel::runtime {
namespace {

constexpr int64_t kMiB = 1 << 20, kGiB = 1LL << 30;

// Qwen3-0.6B with a bf16 cache: 28 layers x 2 x 8 kv heads x 128 x 2 bytes = 112 KiB per token.
KvPlanInput Qwen06b() {
  return KvPlanInput{.bytes_per_block = 114688LL * 16, .block_size = 16, .max_model_len = 40960,
                     .max_num_seqs = 256};
}

TEST(KvPlan, HostDefaultIsCappedAtOneGibButHoldsOneFullSequence) {
  KvPlanInput in{.bytes_per_block = 1024 * 16, .block_size = 16, .max_model_len = 8192,
                 .max_num_seqs = 4};
  auto p = PlanKvCache(in);
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_FALSE(p->device);
  EXPECT_EQ(p->n_blocks, 4 * (4096 / 16));  // every slot at 4k, under the 1 GiB cap
  in.max_num_seqs = 1024;                   // 1024 x 4096 x 1 KiB = 4 GiB -> capped at 1 GiB
  p = PlanKvCache(in);
  EXPECT_EQ(p->n_blocks, kGiB / (1024 * 16));
  in = Qwen06b();  // one 40960-token sequence is 4.4 GiB: more than the cap, still granted
  in.max_num_seqs = 1;
  p = PlanKvCache(in);
  EXPECT_EQ(p->n_blocks, 40960 / 16);
  EXPECT_DOUBLE_EQ(p->max_concurrency, 1.0);
}

TEST(KvPlan, HostKvCacheMemoryIsExact) {
  KvPlanInput in = Qwen06b();
  in.kv_cache_bytes = 10 * kGiB + 5;
  auto p = PlanKvCache(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->n_blocks, (10 * kGiB + 5) / in.bytes_per_block);
  EXPECT_EQ(p->capacity_tokens, p->n_blocks * 16);
  EXPECT_EQ(p->bytes, p->n_blocks * in.bytes_per_block);
  in.kv_cache_bytes = 1000;
  auto bad = PlanKvCache(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("holds no block"), std::string::npos);
}

TEST(KvPlan, DeviceTakesUtilizationTimesTotalMinusUsed) {
  KvPlanInput in = Qwen06b();
  in.device_total_bytes = 80 * kGiB;
  in.device_free_bytes = 80 * kGiB - 3 * kGiB;  // weights + activations + context: 3 GiB
  auto p = PlanKvCache(in);
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_TRUE(p->device);
  const int64_t budget = (int64_t)(0.9 * 80 * kGiB) - 3 * kGiB;  // 69 GiB
  EXPECT_EQ(p->budget_bytes, budget);
  EXPECT_EQ(p->n_blocks, budget / in.bytes_per_block);
  EXPECT_LE(p->bytes, budget);
  EXPECT_GT(p->bytes, budget - in.bytes_per_block);
  EXPECT_NEAR(p->max_concurrency, (double)p->capacity_tokens / 40960, 1e-12);
  EXPECT_FALSE(p->capped);
  // Another process holding memory lowers the budget the same way.
  in.device_free_bytes -= 20 * kGiB;
  auto q = PlanKvCache(in);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->budget_bytes, budget - 20 * kGiB);
  const std::string line = DescribeKvPlan(*q, in);
  EXPECT_NE(line.find("max concurrency at max_model_len 40960"), std::string::npos) << line;
  EXPECT_NE(line.find("utilization 0.90"), std::string::npos) << line;
}

TEST(KvPlan, DeviceKvCacheMemoryCapsTheBudget) {
  KvPlanInput in = Qwen06b();
  in.device_total_bytes = 80 * kGiB;
  in.device_free_bytes = 78 * kGiB;
  in.kv_cache_bytes = 8 * kGiB;
  auto p = PlanKvCache(in);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->capped);
  EXPECT_EQ(p->n_blocks, 8 * kGiB / in.bytes_per_block);
  in.kv_cache_bytes = 500 * kGiB;  // above the budget: the budget wins
  p = PlanKvCache(in);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->capped);
  EXPECT_EQ(p->n_blocks, ((int64_t)(0.9 * 80 * kGiB) - 2 * kGiB) / in.bytes_per_block);
}

TEST(KvPlan, DeviceErrorsWhenNothingFits) {
  KvPlanInput in = Qwen06b();
  in.device_total_bytes = 10 * kGiB;
  in.device_free_bytes = 500 * kMiB;  // 9.5 GiB used: more than 0.9 x 10 GiB
  auto p = PlanKvCache(in);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(p.error().message.find("no KV-cache block fits"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("--gpu-memory-utilization"), std::string::npos);
  // Room for some blocks, but not for one sequence of max_model_len.
  in.device_free_bytes = 10 * kGiB - 7 * kGiB;  // budget 2 GiB < 4.4 GiB for 40960 tokens
  p = PlanKvCache(in);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("fewer than one sequence of max_model_len 40960"),
            std::string::npos) << p.error().message;
  in.max_model_len = 4096;  // a shorter context fits
  p = PlanKvCache(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->n_blocks, (2 * kGiB) / in.bytes_per_block);
}

TEST(KvPlan, RejectsBadUtilization) {
  KvPlanInput in = Qwen06b();
  in.device_total_bytes = 80 * kGiB;
  in.device_free_bytes = 79 * kGiB;
  for (double u : {0.0, -0.5, 1.5}) {
    in.gpu_memory_utilization = u;
    auto p = PlanKvCache(in);
    ASSERT_FALSE(p.ok()) << u;
    EXPECT_NE(p.error().message.find("--gpu-memory-utilization must be in (0, 1]"), std::string::npos);
  }
  in.gpu_memory_utilization = 1.0;
  EXPECT_TRUE(PlanKvCache(in).ok());
}

}  // namespace
}  // namespace petrel::runtime
