// LoRA golden tests against PEFT 0.21 / transformers references (tests/fixtures/refs.json):
//   lora_all  runtime PEFT adapter on all 7 projections (f32 tensors, r 8, alpha 16)
//   lora_qv   runtime PEFT adapter on q_proj / v_proj (bf16 tensors, r 4, alpha 8)
//   the MLX-LM layout of lora_all (lora_a/lora_b transposed, scale 2.0) -> lora_all references
//   merged_all: our `petrel merge` output loaded as a plain model -> merged_all references, and
//   every merged tensor within one bf16 ulp of merge_and_unload()'s
//   (qwen3-tiny-lora-all-merged-layers.safetensors).
#include <unistd.h>

#include <filesystem>

#include "formats/safetensors.h"
#include "../golden_check.h"
#include "model/lora/merge.h"

namespace petrel::model {
namespace {

using golden::CheckCases;
using golden::IdsOf;

const std::string kFx = PETREL_FIXTURES;

class LoraGolden : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    refs_ = new Json(golden::LoadRefs(kFx + "/refs.json"));
    auto m = LoadModel(kFx + "/qwen3-tiny", LoadOptions{.n_threads = 2});
    ASSERT_TRUE(m.ok()) << m.error().ToString();
    base_ = std::move(m).value().release();
  }
  static void TearDownTestSuite() {
    delete base_;
    delete refs_;
  }
  std::shared_ptr<const lora::LoraAdapter> Load(const std::string& name) {
    auto a = lora::LoadAdapter(kFx + "/" + name, base_->config());
    EXPECT_TRUE(a.ok()) << a.error().ToString();
    return a.ok() ? *a : nullptr;
  }
  static Model* base_;
  static Json* refs_;
};
Model* LoraGolden::base_ = nullptr;
Json* LoraGolden::refs_ = nullptr;

TEST_F(LoraGolden, PeftAllProjectionsMatchPeft) {
  auto a = Load("qwen3-tiny-lora-all");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->format, lora::AdapterFormat::kPeft);
  EXPECT_EQ(a->NumLinears(), 4 * 7);
  CheckCases(base_, a.get(), (*refs_)["lora_all"], IdsOf((*refs_)["probe_ids"]), "lora_all");
}

TEST_F(LoraGolden, PeftQvBf16MatchesPeft) {
  auto a = Load("qwen3-tiny-lora-qv");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->NumLinears(), 4 * 2);
  EXPECT_EQ(a->MaxRank(), 4);
  CheckCases(base_, a.get(), (*refs_)["lora_qv"], IdsOf((*refs_)["probe_ids"]), "lora_qv");
}

TEST_F(LoraGolden, MlxLayoutMatchesPeftReferences) {
  auto a = Load("qwen3-tiny-lora-all-mlx");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->format, lora::AdapterFormat::kMlx);
  EXPECT_EQ(a->NumLinears(), 4 * 7);
  CheckCases(base_, a.get(), (*refs_)["lora_all"], IdsOf((*refs_)["probe_ids"]), "lora_all_mlx");
}

TEST_F(LoraGolden, BaseIsUnchangedWithoutAdapter) {
  CheckCases(base_, nullptr, (*refs_)["base"], IdsOf((*refs_)["probe_ids"]), "base");
}

// bf16 values as ordered integers: adjacent representable values differ by 1.
int32_t OrderedBf16(uint16_t b) { return (b & 0x8000) ? -(int32_t)(b & 0x7fff) : (int32_t)b; }

TEST_F(LoraGolden, MergedModelMatchesMergeAndUnload) {
  namespace fs = std::filesystem;
  const fs::path out = fs::temp_directory_path() / ("petrel_lora_merge_" + std::to_string(getpid()));
  fs::remove_all(out);
  int64_t last_done = 0, calls = 0;
  lora::MergeOptions opts;
  opts.n_threads = 2;
  opts.progress = [&](int64_t done, int64_t total) {
    EXPECT_GE(done, last_done);
    EXPECT_LE(done, total);
    last_done = done;
    ++calls;
  };
  auto st = lora::MergeAdapter(kFx + "/qwen3-tiny", kFx + "/qwen3-tiny-lora-all", out.string(), opts);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_GT(calls, 0);
  for (const char* f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                        "model.safetensors"})
    EXPECT_TRUE(fs::exists(out / f)) << f;

  // Every tensor merge_and_unload() wrote, within one bf16 ulp (same dtype, same shape).
  auto ours = formats::TensorStore::OpenDirectory(out.string());
  ASSERT_TRUE(ours.ok()) << ours.error().ToString();
  auto want = formats::TensorStore::OpenFiles({kFx + "/qwen3-tiny-lora-all-merged-layers.safetensors"});
  ASSERT_TRUE(want.ok()) << want.error().ToString();
  int checked = 0, exact = 0;
  int64_t elements = 0, off_by_one = 0;
  for (const auto& [name, w] : want->all()) {
    const formats::TensorInfo* g = ours->Find(name);
    ASSERT_TRUE(g) << name;
    ASSERT_EQ(g->dtype, DType::kBF16) << name;
    ASSERT_EQ(w->dtype, DType::kBF16) << name;
    ASSERT_TRUE(g->shape == w->shape) << name;
    const auto* a = static_cast<const uint16_t*>(g->data);
    const auto* b = static_cast<const uint16_t*>(w->data);
    int32_t worst = 0;
    for (int64_t i = 0; i < w->shape.NumElements(); ++i) {
      const int32_t d = std::abs(OrderedBf16(a[i]) - OrderedBf16(b[i]));
      worst = std::max(worst, d);
      off_by_one += d == 1;
    }
    elements += w->shape.NumElements();
    EXPECT_LE(worst, 1) << name << ": more than one bf16 ulp from merge_and_unload()";
    exact += worst == 0;
    ++checked;
  }
  EXPECT_GT(checked, 28);
  std::printf("merged: %d tensors checked, %d bit-identical, %lld of %lld elements 1 ulp off\n", checked,
              exact, (long long)off_by_one, (long long)elements);

  // The merged directory is a plain model: its logits match the merged_all references.
  auto m = LoadModel(out.string(), LoadOptions{.n_threads = 2});
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  CheckCases(m->get(), nullptr, (*refs_)["merged_all"], IdsOf((*refs_)["probe_ids"]), "merged_all");
  fs::remove_all(out);
}

TEST_F(LoraGolden, MergeShardsWithIndexAndConvertsDtype) {
  namespace fs = std::filesystem;
  const fs::path out = fs::temp_directory_path() / ("petrel_lora_shard_" + std::to_string(getpid()));
  fs::remove_all(out);
  lora::MergeOptions opts;
  opts.n_threads = 2;
  opts.max_shard_bytes = 8'000'000;  // the f32 embedding alone is 39 MB -> several shards
  opts.dtype = DType::kF32;
  auto st = lora::MergeAdapter(kFx + "/qwen3-tiny", kFx + "/qwen3-tiny-lora-qv", out.string(), opts);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  ASSERT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
  auto cfg = ReadJsonFile((out / "config.json").string());
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ((*cfg)["torch_dtype"], "float32");
  // Loads through the index; an f32 merge of lora_qv gives the runtime adapter's logits.
  auto m = LoadModel(out.string(), LoadOptions{.n_threads = 2});
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  CheckCases(m->get(), nullptr, (*refs_)["lora_qv"], IdsOf((*refs_)["probe_ids"]), "merged_qv_f32");
  fs::remove_all(out);
}

}  // namespace
}  // namespace petrel::model
