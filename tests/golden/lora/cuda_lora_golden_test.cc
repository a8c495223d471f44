// LoRA on the CUDA backend against the PEFT references (tests/fixtures/refs.json), as
// lora_golden_test.cc does on the CPU: adapters read by lora::LoadAdapter and uploaded with
// lora::UploadAdapter, then the same checks with the bf16 tolerance of cuda_golden_test.cc (0.15
// on logits up to ~20, greedy steps only where the reference margin exceeds 0.3; see there for
// why). Also two sequences with different adapters and one without in one batch, against the CPU
// backend. Label gpu: skipped without a CUDA build or a GPU.
#include <gtest/gtest.h>

#include "../golden_check.h"
#include "model/lora/device_adapter.h"

namespace petrel::model {
namespace {

using golden::CheckCases;
using golden::IdsOf;

const std::string kFx = PETREL_FIXTURES;
constexpr golden::Tolerance kBf16{.logit = 0.15f, .margin = 0.3f};

class CudaLoraGolden : public testing::Test {
 protected:
  void SetUp() override {
    LoadOptions o;
    o.n_threads = 2;
    o.device = "cuda";
    auto m = LoadModel(kFx + "/qwen3-tiny", o);
    if (!m.ok()) GTEST_SKIP() << m.error().ToString();
    gpu_ = std::move(m).value();
    refs_ = golden::LoadRefs(kFx + "/refs.json");
  }
  std::shared_ptr<const lora::LoraAdapter> Load(const std::string& name) {
    auto a = lora::LoadAdapter(kFx + "/" + name, gpu_->config());
    EXPECT_TRUE(a.ok()) << a.error().ToString();
    return a.ok() ? lora::UploadAdapter(*a, gpu_->backend()) : nullptr;
  }
  std::unique_ptr<Model> gpu_;
  Json refs_;
};

TEST_F(CudaLoraGolden, PeftAllProjectionsMatchPeft) {
  auto a = Load("qwen3-tiny-lora-all");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->NumLinears(), 4 * 7);
  CheckCases(gpu_.get(), a.get(), refs_["lora_all"], IdsOf(refs_["probe_ids"]), "cuda lora_all", kBf16);
}

TEST_F(CudaLoraGolden, PeftQvBf16MatchesPeft) {
  auto a = Load("qwen3-tiny-lora-qv");
  ASSERT_TRUE(a);
  CheckCases(gpu_.get(), a.get(), refs_["lora_qv"], IdsOf(refs_["probe_ids"]), "cuda lora_qv", kBf16);
}

TEST_F(CudaLoraGolden, MlxLayoutMatchesPeftReferences) {
  auto a = Load("qwen3-tiny-lora-all-mlx");
  ASSERT_TRUE(a);
  CheckCases(gpu_.get(), a.get(), refs_["lora_all"], IdsOf(refs_["probe_ids"]), "cuda lora_all_mlx", kBf16);
}

// Three sequences (adapter all, base, adapter qv) prefilled in one batch and then decoding
// together (decode graphs), CUDA against the CPU backend fed the same tokens.
TEST_F(CudaLoraGolden, MixedAdapterBatchMatchesCpu) {
  LoadOptions o;
  o.n_threads = 2;
  auto cpu_m = LoadModel(kFx + "/qwen3-tiny", o);
  ASSERT_TRUE(cpu_m.ok());
  auto& cpu = **cpu_m;
  auto host_all = lora::LoadAdapter(kFx + "/qwen3-tiny-lora-all", cpu.config());
  auto host_qv = lora::LoadAdapter(kFx + "/qwen3-tiny-lora-qv", cpu.config());
  ASSERT_TRUE(host_all.ok() && host_qv.ok());
  auto dev_all = lora::UploadAdapter(*host_all, gpu_->backend());
  auto dev_qv = lora::UploadAdapter(*host_qv, gpu_->backend());
  const std::vector<const lora::LoraAdapter*> cpu_ad = {host_all->get(), nullptr, host_qv->get()};
  const std::vector<const lora::LoraAdapter*> gpu_ad = {dev_all.get(), nullptr, dev_qv.get()};
  constexpr int kBlock = 16;
  const int64_t vocab = cpu.config().vocab_size;
  auto cpu_cache = cpu.CreateKvCache(16, kBlock, DType::kF32);
  auto gpu_cache = gpu_->CreateKvCache(16, kBlock, DType::kF32);
  const std::vector<std::vector<int32_t>> prompts = {
      {9707, 11, 1879, 374}, {785, 6722, 315, 9625, 374, 12095, 13}, {16, 17, 18, 19, 20, 21, 22, 23, 24, 25}};
  const std::vector<std::vector<int32_t>> tables = {{3, 7}, {0, 5}, {8, 2}};
  std::vector<int> len(3, 0);
  std::vector<int32_t> next(3);
  for (int step = 0; step < 8; ++step) {
    ForwardBatch cb;
    for (int s = 0; s < 3; ++s)
      golden::AppendSeqRows(cb, step == 0 ? prompts[s] : std::vector<int32_t>{next[s]}, len[s],
                            tables[s], kBlock);
    ForwardBatch gb = cb;
    cb.seq_adapters = cpu_ad;
    gb.seq_adapters = gpu_ad;
    std::vector<float> want(3 * vocab), got(3 * vocab);
    cpu.Forward(cb, *cpu_cache, want.data());
    gpu_->Forward(gb, *gpu_cache, got.data());
    float worst = 0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(want[i] - got[i]));
    EXPECT_LT(worst, kBf16.logit) << "step " << step;
    for (int s = 0; s < 3; ++s)
      next[s] = (int32_t)(std::max_element(want.begin() + s * vocab, want.begin() + (s + 1) * vocab) -
                          (want.begin() + s * vocab));
  }
}

}  // namespace
}  // namespace petrel::model
