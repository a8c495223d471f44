// Weight binding (model::LoadModel) on temporary copies of tests/fixtures/qwen3-tiny whose
// model.safetensors is rewritten with one tensor missing, reshaped or retyped: each gives the
// precise error naming the tensor. Also: the parameter count formula against ForEachTensor.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "../formats/temp_dir.h"
#include "core/json_util.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "model/weights.h"

namespace petrel::model {
namespace {

using formats::TensorToWrite;
using petrel::testing::TempDir;
using petrel::testing::WriteBytes;

using petrel::testing::FailsWith;

const std::string kFixture = std::string(PETREL_FIXTURES) + "/qwen3-tiny";

// Copies the fixture's config files into `dir` and rewrites its tensors through `edit` (which may
// erase, reshape or retype entries) into dir/model.safetensors.
void CopyFixture(const TempDir& dir, const std::function<void(std::vector<TensorToWrite>&)>& edit) {
  namespace fs = std::filesystem;
  for (const char* f : {"config.json", "generation_config.json"})
    fs::copy_file(kFixture + "/" + f, dir.File(f), fs::copy_options::overwrite_existing);
  auto store = formats::TensorStore::OpenDirectory(kFixture);
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  std::vector<TensorToWrite> list;
  for (const auto& [name, t] : store->all()) list.push_back({name, t->dtype, t->shape, t->data});
  edit(list);
  auto st = formats::WriteSafetensors(dir.File("model.safetensors"), list);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
}

TensorToWrite* FindTensor(std::vector<TensorToWrite>& list, const std::string& name) {
  for (auto& t : list)
    if (t.name == name) return &t;
  ADD_FAILURE() << "fixture has no " << name;
  return nullptr;
}

void EditConfig(const TempDir& dir, const std::function<void(Json&)>& edit) {
  auto j = ReadJsonFile(dir.File("config.json"));
  ASSERT_TRUE(j.ok());
  edit(*j);
  WriteBytes(dir.File("config.json"), j->dump(2));
}

TEST(LoadModel, UnchangedCopyLoads) {
  TempDir dir;
  CopyFixture(dir, [](auto&) {});
  auto m = LoadModel(dir.path(), LoadOptions{.n_threads = 1});
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ((*m)->config().architecture, "qwen3");
  EXPECT_GT((*m)->WeightBytes(), 0);
}

TEST(LoadModel, MissingTensorIsNotFoundByName) {
  TempDir dir;
  CopyFixture(dir, [](std::vector<TensorToWrite>& l) {
    std::erase_if(l, [](const auto& t) { return t.name == "model.layers.2.mlp.up_proj.weight"; });
  });
  EXPECT_TRUE(FailsWith(LoadModel(dir.path(), LoadOptions{.n_threads = 1}), ErrorCode::kNotFound,
                        {dir.path(), "missing tensor `model.layers.2.mlp.up_proj.weight`"}));
}

TEST(LoadModel, MissingQkNormIsNotFoundByName) {
  TempDir dir;
  CopyFixture(dir, [](std::vector<TensorToWrite>& l) {
    std::erase_if(l,
                  [](const auto& t) { return t.name == "model.layers.3.self_attn.k_norm.weight"; });
  });
  EXPECT_TRUE(FailsWith(LoadModel(dir.path(), LoadOptions{.n_threads = 1}), ErrorCode::kNotFound,
                        {"missing tensor `model.layers.3.self_attn.k_norm.weight`"}));
}

TEST(LoadModel, UntiedConfigWithoutLmHead) {
  TempDir dir;
  CopyFixture(dir, [](auto&) {});
  EditConfig(dir, [](Json& j) { j["tie_word_embeddings"] = false; });
  EXPECT_TRUE(FailsWith(LoadModel(dir.path(), LoadOptions{.n_threads = 1}), ErrorCode::kNotFound,
                        {"missing tensor `lm_head.weight`"}));
}

TEST(LoadModel, WrongShapeNamesExpectedAndGot) {
  TempDir dir;
  CopyFixture(dir, [](std::vector<TensorToWrite>& l) {
    // k_proj is [n_kv_heads * head_dim, d_model] = [64, 64]; keep only its first 32 rows.
    if (auto* t = FindTensor(l, "model.layers.1.self_attn.k_proj.weight")) t->shape = {32, 64};
  });
  EXPECT_TRUE(
      FailsWith(LoadModel(dir.path(), LoadOptions{.n_threads = 1}), ErrorCode::kInvalidFormat,
                {dir.File("model.safetensors"), "tensor `model.layers.1.self_attn.k_proj.weight`",
                 "expected shape [64, 64], got [32, 64]"}));
}

TEST(LoadModel, TransposedWeightIsAShapeError) {
  TempDir dir;
  CopyFixture(dir, [](std::vector<TensorToWrite>& l) {
    // o_proj is [d_model, n_heads * head_dim] = [64, 128].
    if (auto* t = FindTensor(l, "model.layers.0.self_attn.o_proj.weight")) t->shape = {128, 64};
  });
  EXPECT_TRUE(FailsWith(LoadModel(dir.path(), LoadOptions{.n_threads = 1}),
                        ErrorCode::kInvalidFormat,
                        {"tensor `model.layers.0.self_attn.o_proj.weight`",
                         "expected shape [64, 128], got [128, 64]"}));
}

TEST(LoadModel, ConfigDisagreeingWithWeights) {
  TempDir dir;
  CopyFixture(dir, [](auto&) {});
  EditConfig(dir, [](Json& j) { j["vocab_size"] = 151646; });
  EXPECT_TRUE(FailsWith(
      LoadModel(dir.path(), LoadOptions{.n_threads = 1}), ErrorCode::kInvalidFormat,
      {"tensor `model.embed_tokens.weight`", "expected shape [151646, 64], got [151936, 64]"}));
}

TEST(LoadModel, IntegerWeightsAreUnsupported) {
  TempDir dir;
  CopyFixture(dir, [](std::vector<TensorToWrite>& l) {
    // Same element size as bf16, so the file itself is valid.
    if (auto* t = FindTensor(l, "model.norm.weight")) t->dtype = DType::kI16;
  });
  EXPECT_TRUE(FailsWith(LoadModel(dir.path(), LoadOptions{.n_threads = 1}), ErrorCode::kUnsupported,
                        {"tensor `model.norm.weight` has dtype I16"}));
}

TEST(LoadModel, UnknownLoadFormat) {
  EXPECT_TRUE(FailsWith(LoadModel(kFixture, LoadOptions{.load_format = "gguf", .n_threads = 1}),
                        ErrorCode::kInvalidArgument, {"unknown --load-format \"gguf\""}));
}

TEST(LoadModel, MissingDirectoryOrWeights) {
  TempDir dir;
  EXPECT_TRUE(FailsWith(LoadModel(dir.path(), LoadOptions{.n_threads = 1}), ErrorCode::kNotFound,
                        {dir.File("config.json")}));
  std::filesystem::copy_file(kFixture + "/config.json", dir.File("config.json"));
  EXPECT_TRUE(FailsWith(LoadModel(dir.path(), LoadOptions{.n_threads = 1}), ErrorCode::kNotFound,
                        {"no model.safetensors or model.safetensors.index.json"}));
  // Dummy weights need config.json alone.
  auto m = LoadModel(dir.path(), LoadOptions{.load_format = "dummy", .n_threads = 1});
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ((*m)->WeightBytes(), (*m)->config().NumParameters() * 2);  // bf16, tied
}

TEST(LoadModel, ShardedCopyLoads) {
  TempDir dir;
  CopyFixture(dir, [](auto&) {});
  // Split model.safetensors into two shards: embeddings alone, everything else.
  auto store = formats::TensorStore::OpenDirectory(dir.path());
  ASSERT_TRUE(store.ok());
  std::vector<TensorToWrite> s1, s2;
  Json index = {{"metadata", Json::object()}, {"weight_map", Json::object()}};
  for (const auto& [name, t] : store->all()) {
    const bool first = name == "model.embed_tokens.weight";
    (first ? s1 : s2).push_back({name, t->dtype, t->shape, t->data});
    index["weight_map"][name] =
        first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  ASSERT_TRUE(formats::WriteSafetensors(dir.File("model-00001-of-00002.safetensors"), s1).ok());
  ASSERT_TRUE(formats::WriteSafetensors(dir.File("model-00002-of-00002.safetensors"), s2).ok());
  WriteBytes(dir.File("model.safetensors.index.json"), index.dump());
  store = formats::TensorStore{};  // unmap before removing the file it maps
  std::filesystem::remove(dir.File("model.safetensors"));
  auto m = LoadModel(dir.path(), LoadOptions{.n_threads = 1});
  ASSERT_TRUE(m.ok()) << m.error().ToString();
}

// ModelConfig::NumParameters() (a closed formula) against the sum of ForEachTensor's shapes
// (embeddings counted once when tied, as lm_head is not listed then).
int64_t SumOfShapes(const formats::ModelConfig& c) {
  Weights w;
  int64_t n = 0;
  ForEachTensor(c, w, [&](const TensorSpec& s, TensorView&) { n += s.shape.NumElements(); });
  return n;
}

TEST(ParameterCount, FormulaMatchesTensorList) {
  const std::string src = PETREL_SOURCE_DIR;
  std::vector<std::string> dirs = {src + "/bench/models/qwen3-0.6b", kFixture};
  const std::filesystem::path models = std::string(PETREL_FIXTURES) + "/models";
  if (std::filesystem::exists(models))
    for (const auto& e : std::filesystem::directory_iterator(models))
      if (e.is_directory()) dirs.push_back(e.path().string());
  for (const auto& d : dirs) {
    auto c = formats::LoadHfConfig(d);
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    EXPECT_EQ(c->NumParameters(), SumOfShapes(*c)) << d;
    // With every optional bias on, too.
    c->qkv_bias = c->o_bias = c->mlp_bias = true;
    EXPECT_EQ(c->NumParameters(), SumOfShapes(*c)) << d << " with biases";
  }
  auto q = formats::LoadHfConfig(src + "/bench/models/qwen3-0.6b");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(SumOfShapes(*q), 596049920);  // Qwen3-0.6B, tied embeddings
}

// The parameter counts of the fixture models equal what transformers reported when it built them
// (tools/gen_model_refs.py prints sum(p.numel()) with tied weights counted once).
TEST(ParameterCount, FixtureModelsMatchTransformers) {
  const std::string models = std::string(PETREL_FIXTURES) + "/models";
  const std::pair<const char*, int64_t> want[] = {{"llama-tiny-llama3", 696896},
                                                  {"qwen2-tiny", 608992},
                                                  {"llama-tiny-yarn", 373184},
                                                  {"mistral-tiny", 410048}};
  for (const auto& [name, n] : want) {
    if (!std::filesystem::exists(models + "/" + name)) continue;
    auto c = formats::LoadHfConfig(models + "/" + name);
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    EXPECT_EQ(c->NumParameters(), n) << name;
  }
}

}  // namespace
}  // namespace petrel::model
