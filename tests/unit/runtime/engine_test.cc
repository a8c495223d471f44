// The engine on the real qwen3-tiny fixture: continuous batching gives each request exactly what it
// gets alone, preemption and prefix caching do not change outputs, aborts free KV blocks.
#include "runtime/engine.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "model/model.h"
#include "engine_client.h"

namespace petrel::runtime {
namespace {

using testing_client::Client;
using testing_client::Collected;
using testing_client::Greedy;

std::unique_ptr<Engine> MakeEngine(EngineOptions o) {
  auto m = model::LoadModel(std::string(PETREL_FIXTURES) + "/qwen3-tiny", model::LoadOptions{.n_threads = 2});
  EXPECT_TRUE(m.ok());
  auto e = Engine::Create(std::move(m).value(), o);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().ToString());
  return std::move(e).value();
}

std::vector<std::vector<int32_t>> Prompts() {
  std::vector<std::vector<int32_t>> p;
  for (int i = 0; i < 12; ++i) {
    std::vector<int32_t> ids;
    for (int j = 0; j < 3 + 7 * i; ++j) ids.push_back((i * 7919 + j * 104729) % 150000);
    p.push_back(ids);
  }
  return p;
}

TEST(Engine, BatchedEqualsSequentialAndPreemptionIsInvisible) {
  std::vector<std::vector<int32_t>> alone;
  {
    auto e = MakeEngine(EngineOptions{.max_num_seqs = 1});
    Client c(*e);
    for (auto& p : Prompts()) alone.push_back(c.Start(Greedy(p, 12)).get().tokens);
  }
  // Small token budget (chunked prefill) and a KV pool too small for all at once (preemption).
  for (int64_t kv_blocks : {int64_t{0}, int64_t{12}}) {
    EngineOptions o{.max_num_seqs = 8, .max_num_batched_tokens = 24};
    o.kv_cache_bytes = kv_blocks * 16 * 2 * 4 * 2 * 32 * 4;  // blocks * block * (2 * layers * kv * hd * f32)
    auto e = MakeEngine(o);
    Client c(*e);
    std::vector<std::future<Collected>> futs;
    for (auto& p : Prompts()) futs.push_back(c.Start(Greedy(p, 12)));
    for (size_t i = 0; i < futs.size(); ++i) {
      Collected got = futs[i].get();
      EXPECT_EQ(got.tokens, alone[i]) << "request " << i << " kv_blocks " << kv_blocks;
      EXPECT_EQ(got.last.reason, FinishReason::kLength);
      EXPECT_EQ(got.last.generated_tokens, 12);
    }
    // Stats are published after the step whose callbacks resolved the futures.
    for (int i = 0; i < 200 && e->Stats().kv_blocks_used != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto st = e->Stats();
    EXPECT_EQ(st.kv_blocks_used, 0);
    if (kv_blocks) {
      EXPECT_GT(st.preemptions_total, 0);
    }
  }
}

// The INT8 KV cache (--kv-cache-dtype int8): each token's K/V are quantized on their own, so a
// request still gets exactly what it gets alone under batching, chunked prefill and prefix caching;
// the planner counts the per-head scales; an unknown dtype is refused by name.
TEST(Engine, Int8KvCacheIsBatchInvariantAndCountsScales) {
  auto e1 = MakeEngine(EngineOptions{.max_num_seqs = 1, .kv_cache_dtype = "int8"});
  // qwen3-tiny: 4 layers x 2 kv heads x (32 int8 + 4 scale bytes) x K,V.
  EXPECT_EQ(e1->model_info().kv_bytes_per_token, 2 * 4 * 2 * (32 + 4));
  std::vector<std::vector<int32_t>> alone;
  {
    Client c(*e1);
    for (auto& p : Prompts()) alone.push_back(c.Start(Greedy(p, 8)).get().tokens);
  }
  auto e = MakeEngine(EngineOptions{.max_num_seqs = 8, .max_num_batched_tokens = 24, .kv_cache_dtype = "int8"});
  Client c(*e);
  std::vector<std::future<Collected>> futs;
  for (auto& p : Prompts()) futs.push_back(c.Start(Greedy(p, 8)));
  for (size_t i = 0; i < futs.size(); ++i) EXPECT_EQ(futs[i].get().tokens, alone[i]) << "request " << i;

  auto m = model::LoadModel(std::string(PETREL_FIXTURES) + "/qwen3-tiny", model::LoadOptions{.n_threads = 2});
  ASSERT_TRUE(m.ok());
  auto bad = Engine::Create(std::move(m).value(), EngineOptions{.kv_cache_dtype = "f16"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("f16"), std::string::npos) << bad.error().message;
}

TEST(Engine, PrefixCacheServesRepeatedPrompt) {
  auto e = MakeEngine(EngineOptions{});
  Client c(*e);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 50; ++i) prompt.push_back(1000 + i);
  Collected a = c.Start(Greedy(prompt, 8)).get();
  Collected b = c.Start(Greedy(prompt, 8)).get();
  EXPECT_EQ(a.last.cached_prompt_tokens, 0);
  EXPECT_EQ(b.last.cached_prompt_tokens, 48);  // 3 full blocks of 16 (the last token is recomputed)
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_GT(e->Stats().prefix_cache_hits, 0);
}

TEST(Engine, AbortFreesBlocksAndReportsAbort) {
  auto e = MakeEngine(EngineOptions{});
  Client c(*e);
  uint64_t id = 0;
  auto req = Greedy({1, 2, 3, 4, 5}, 3000);
  auto fut = c.Start(req, &id);
  for (int i = 0; i < 500 && e->Stats().running == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(e->Stats().kv_blocks_used, 0);
  e->Abort(id);
  Collected got = fut.get();
  EXPECT_EQ(got.last.reason, FinishReason::kAbort);
  for (int i = 0; i < 100 && e->Stats().kv_blocks_used != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(e->Stats().kv_blocks_used, 0);
}

TEST(Engine, RejectsBadRequestsWithPreciseErrors) {
  auto e = MakeEngine(EngineOptions{.max_model_len = 64});
  auto too_long = e->Submit(Greedy(std::vector<int32_t>(60, 7), 10), nullptr);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, ErrorCode::kOutOfRange);
  EXPECT_NE(too_long.error().message.find("maximum context length is 64"), std::string::npos);
  auto bad_id = e->Submit(Greedy({1, 999999}, 1), nullptr);
  ASSERT_FALSE(bad_id.ok());
  EXPECT_NE(bad_id.error().message.find("999999"), std::string::npos);
  EXPECT_FALSE(e->Submit(Greedy({}, 1), nullptr).ok());
  auto r = Greedy({1}, 1);
  r.sampling.temperature = -1;
  EXPECT_EQ(e->Submit(r, nullptr).error().code, ErrorCode::kInvalidArgument);
}

TEST(Engine, StopTokenEndsWithStop) {
  auto e = MakeEngine(EngineOptions{});
  Client c(*e);
  Collected free_run = c.Start(Greedy({3838, 374, 5662, 6832, 30}, 10)).get();
  auto req = Greedy({3838, 374, 5662, 6832, 30}, 10);
  req.stop_token_ids = {free_run.tokens[2]};
  Collected stopped = c.Start(req).get();
  EXPECT_EQ(stopped.last.reason, FinishReason::kStop);
  EXPECT_LE(stopped.tokens.size(), 3u);
  EXPECT_EQ(stopped.tokens.back(), free_run.tokens[2]);
}

// Pipelined greedy decoding (EngineOptions::pipeline_decode "on": step n + 1 launched before step
// n's ids are taken; on the CPU the backend computes them at once, so this checks the engine's
// bookkeeping, the CUDA golden tests the device path): requests of different lengths, one ended
// by a stop token, one up to the model's length, some arriving while others decode, and a KV pool
// small enough to preempt, must get exactly what step-by-step decoding gives them, and every KV
// block must come back.
TEST(Engine, PipelinedDecodeEqualsStepByStep) {
  const std::vector<int32_t> stop_prompt = {3838, 374, 5662, 6832, 30};
  std::vector<int32_t> free_run;
  {
    auto e = MakeEngine(EngineOptions{.pipeline_decode = "off"});
    Client c(*e);
    free_run = c.Start(Greedy(stop_prompt, 10)).get().tokens;
  }
  auto requests = [&] {
    std::vector<GenerateRequest> r;
    const auto p = Prompts();
    const int lens[] = {1, 5, 9, 14, 20, 7};
    for (int i = 0; i < 6; ++i) r.push_back(Greedy(p[i], lens[i]));
    auto stop = Greedy(stop_prompt, 10);
    stop.stop_token_ids = {free_run[4]};
    r.push_back(stop);
    r.push_back(Greedy(std::vector<int32_t>(40, 9), 24));  // up to max_model_len 64
    return r;
  };
  auto run = [&](const std::string& mode, int64_t kv_blocks) {
    EngineOptions o{.max_num_seqs = 8, .max_num_batched_tokens = 64, .max_model_len = 64};
    o.pipeline_decode = mode;
    o.kv_cache_bytes = kv_blocks * 16 * 2 * 4 * 2 * 32 * 4;  // see the first test
    auto e = MakeEngine(o);
    Client c(*e);
    auto reqs = requests();
    std::vector<std::future<Collected>> futs;
    for (size_t i = 0; i < reqs.size(); ++i) {
      futs.push_back(c.Start(reqs[i]));
      if (i % 3 == 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // mid-decode
    }
    std::vector<Collected> got;
    for (auto& f : futs) got.push_back(f.get());
    for (int i = 0; i < 200 && e->Stats().kv_blocks_used != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(e->Stats().kv_blocks_used, 0) << mode << " kv_blocks " << kv_blocks;
    if (mode == "on") EXPECT_GT(e->Stats().pipelined_steps_total, 5) << kv_blocks;
    else EXPECT_EQ(e->Stats().pipelined_steps_total, 0);
    return got;
  };
  for (int64_t kv_blocks : {int64_t{0}, int64_t{8}}) {
    const auto want = run("off", kv_blocks), got = run("on", kv_blocks);
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].tokens, want[i].tokens) << "request " << i << " kv_blocks " << kv_blocks;
      EXPECT_EQ(got[i].last.reason, want[i].last.reason) << "request " << i;
      EXPECT_EQ(got[i].last.generated_tokens, want[i].last.generated_tokens) << "request " << i;
    }
    EXPECT_EQ(want[6].last.reason, FinishReason::kStop);
    EXPECT_EQ(want[7].last.generated_tokens, 24);
  }
  EngineOptions bad;
  bad.pipeline_decode = "sometimes";
  auto m = model::LoadModel(std::string(PETREL_FIXTURES) + "/qwen3-tiny", model::LoadOptions{.n_threads = 2});
  ASSERT_TRUE(m.ok());
  auto e = Engine::Create(std::move(m).value(), bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("pipeline_decode"), std::string::npos);
}

}  // namespace
}  // namespace petrel::runtime
