// The engine on the GPU (label gpu; skipped without a CUDA build or a GPU), qwen3-tiny fixture:
// pipelined greedy decoding - the default there, step n+1 launched with its tokens fed on the
// device before step n's ids are taken - gives a request exactly the tokens step-by-step decoding
// gives it (alone, so that both runs form the same batches: the GPU's arithmetic for a row may
// depend on the batch's shape), including one ended by a stop token, and so do seeded requests
// sampled on the device (pipelined as well, one with logprobs); and a concurrent mix of
// greedy requests and a seeded sampled one arriving while they decode finishes
// every request with its length and returns every KV block.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "engine_client.h"
#include "model/model.h"
#include "runtime/engine.h"

namespace petrel::runtime {
namespace {

using testing_client::Client;
using testing_client::Collected;
using testing_client::Greedy;

std::unique_ptr<Engine> MakeCudaEngine(const std::string& pipeline) {
  auto m = model::LoadModel(std::string(PETREL_FIXTURES) + "/qwen3-tiny",
                            model::LoadOptions{.n_threads = 2, .device = "cuda"});
  if (!m.ok()) return nullptr;
  EngineOptions o{.max_num_seqs = 8, .max_num_batched_tokens = 256};
  o.kv_cache_bytes = int64_t{64} << 20;
  o.pipeline_decode = pipeline;
  auto e = Engine::Create(std::move(m).value(), o);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().ToString());
  return e.ok() ? std::move(e).value() : nullptr;
}

void WaitBlocksFree(Engine& e) {
  for (int i = 0; i < 200 && e.Stats().kv_blocks_used != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(e.Stats().kv_blocks_used, 0);
}

TEST(CudaEngine, PipelinedDecodeEqualsStepByStep) {
  auto piped = MakeCudaEngine("auto");
  if (!piped) GTEST_SKIP() << "no CUDA device (or built without -DPETREL_CUDA=ON)";
  auto plain = MakeCudaEngine("off");
  ASSERT_TRUE(plain);
  std::vector<GenerateRequest> reqs = {Greedy({9707, 11, 1879}, 30), Greedy({785, 6722}, 1),
                                       Greedy({16, 17, 18, 19, 20, 21, 22, 23, 24, 25}, 17)};
  {
    Client c(*plain);
    auto stop = Greedy({3838, 374, 5662, 6832, 30}, 20);
    const std::vector<int32_t> free_run = c.Start(stop).get().tokens;
    stop.stop_token_ids = {free_run[6]};
    reqs.push_back(stop);
  }
  // Sampled on the device (pipelined too: Backend::SampleRowsAsync), seeded, one with logprobs.
  GenerateRequest sampled1 = Greedy({9707, 11}, 24), sampled2 = Greedy({1, 2, 3, 4}, 12);
  sampled1.sampling.temperature = 0.9f;
  sampled1.sampling.top_k = 40;
  sampled1.sampling.seed = 11;
  sampled2.sampling.temperature = 0.7f;
  sampled2.sampling.top_p = 0.9f;
  sampled2.sampling.seed = 5;
  sampled2.top_logprobs = 2;
  reqs.push_back(sampled1);
  reqs.push_back(sampled2);
  Client cp(*piped), cq(*plain);
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Collected want = cq.Start(reqs[i]).get(), got = cp.Start(reqs[i]).get();
    EXPECT_EQ(got.tokens, want.tokens) << "request " << i;
    EXPECT_EQ(got.last.reason, want.last.reason) << "request " << i;
  }
  EXPECT_EQ(reqs.size(), 6u);
  EXPECT_GT(piped->Stats().pipelined_steps_total, 60);
  EXPECT_EQ(plain->Stats().pipelined_steps_total, 0);

  // Concurrent: greedy requests, and a sampled one arriving while they decode.
  std::vector<std::future<Collected>> futs;
  for (int i = 0; i < 5; ++i) futs.push_back(cp.Start(Greedy({100 + i, 200 + i, 300 + i}, 20 + 5 * i)));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  GenerateRequest sampled = Greedy({42, 43}, 25);
  sampled.sampling.temperature = 0.8f;
  sampled.sampling.seed = 7;
  futs.push_back(cp.Start(sampled));
  for (int i = 0; i < 6; ++i) {
    const Collected got = futs[i].get();
    EXPECT_EQ(got.last.reason, FinishReason::kLength) << "request " << i;
    EXPECT_EQ(got.tokens.size(), (size_t)(i < 5 ? 20 + 5 * i : 25)) << "request " << i;
  }
  WaitBlocksFree(*piped);
  WaitBlocksFree(*plain);
}

}  // namespace
}  // namespace petrel::runtime
