// The adapter loader: what it honours (rank/alpha patterns, rsLoRA, layers_to_transform, regex
// targets, MLX num_layers/keys), what it refuses and how precisely (each bad adapter is a copy of a
// fixture with one thing changed), and lossless PEFT <-> MLX conversion.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/json_util.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/lora/adapter.h"

namespace petrel::model::lora {
namespace {

namespace fs = std::filesystem;
const std::string kFx = PETREL_FIXTURES;
using testing::HasSubstr;

class LoraAdapterTest : public testing::Test {
 protected:
  void SetUp() override {
    auto c = formats::LoadHfConfig(kFx + "/qwen3-tiny");
    ASSERT_TRUE(c.ok());
    base_ = *c;
    tmp_ = fs::temp_directory_path() / ("petrel_lora_test_" + std::to_string(getpid()) + "_" +
                                        testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
  }
  void TearDown() override { fs::remove_all(tmp_); }

  // Copies fixture `name` to a fresh directory, editing its config and filtering / renaming /
  // reshaping its tensors. Returns the directory.
  struct TensorEdit {
    std::string name;
    std::vector<float> values;  // f32 contents (after edit)
    Shape shape;
    DType dtype;
  };
  std::string Copy(const std::string& name, const std::function<void(Json&)>& edit_config,
                   const std::function<bool(TensorEdit&)>& edit_tensor = nullptr) {
    static int n = 0;
    const fs::path dir = tmp_ / ("a" + std::to_string(n++));
    fs::create_directories(dir);
    const fs::path src = fs::path(kFx) / name;
    auto cfg = ReadJsonFile((src / "adapter_config.json").string());
    EXPECT_TRUE(cfg.ok());
    Json j = *cfg;
    if (edit_config) edit_config(j);
    std::ofstream(dir / "adapter_config.json") << DumpJson(j, 2);
    const std::string file = fs::exists(src / "adapters.safetensors") ? "adapters.safetensors"
                                                                      : "adapter_model.safetensors";
    auto store = formats::TensorStore::OpenFiles({(src / file).string()});
    EXPECT_TRUE(store.ok());
    std::vector<TensorEdit> edits;
    for (const auto& [tname, info] : store->all()) {
      TensorEdit e{tname, std::vector<float>(info->shape.NumElements()), info->shape, info->dtype};
      ConvertToF32(info->data, info->dtype, e.values.data(), (int64_t)e.values.size());
      if (edit_tensor && !edit_tensor(e)) continue;  // dropped
      edits.push_back(std::move(e));
    }
    std::vector<Tensor> owned;
    std::vector<formats::TensorToWrite> w;
    for (auto& e : edits) {
      Tensor t(e.dtype, e.shape);
      ConvertFromF32(e.values.data(), e.dtype, t.data(), e.shape.NumElements());
      w.push_back({e.name, e.dtype, e.shape, t.data()});
      owned.push_back(std::move(t));
    }
    EXPECT_TRUE(formats::WriteSafetensors((dir / file).string(), w).ok());
    return dir.string();
  }

  Error ExpectError(const std::string& dir, ErrorCode code) {
    auto r = ReadAdapter(dir, &base_);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return Error{};
    EXPECT_EQ(r.error().code, code) << r.error().ToString();
    return r.error();
  }

  formats::ModelConfig base_;
  fs::path tmp_;
};

TEST_F(LoraAdapterTest, ScalesFromAlphaRankRsloraAndPatterns) {
  auto plain = ReadAdapter(kFx + "/qwen3-tiny-lora-all", &base_);
  ASSERT_TRUE(plain.ok()) << plain.error().ToString();
  EXPECT_FLOAT_EQ(plain->Find(0, LoraTarget::kQ)->scale, 16.0f / 8.0f);
  auto rs = ReadAdapter(Copy("qwen3-tiny-lora-all", [](Json& j) { j["use_rslora"] = true; }), &base_);
  ASSERT_TRUE(rs.ok());
  EXPECT_FLOAT_EQ(rs->Find(0, LoraTarget::kQ)->scale, (float)(16.0 / std::sqrt(8.0)));
  // alpha_pattern: first matching key wins; keys match at a "." boundary.
  auto pat = ReadAdapter(Copy("qwen3-tiny-lora-all", [](Json& j) {
                           j["alpha_pattern"] = {{"layers.1.self_attn.q_proj", 4}, {"q_proj", 32}};
                         }), &base_);
  ASSERT_TRUE(pat.ok()) << pat.error().ToString();
  EXPECT_FLOAT_EQ(pat->Find(1, LoraTarget::kQ)->scale, 0.5f);
  EXPECT_FLOAT_EQ(pat->Find(0, LoraTarget::kQ)->scale, 4.0f);
  EXPECT_FLOAT_EQ(pat->Find(0, LoraTarget::kK)->scale, 2.0f);
  // rank_pattern: the down_proj tensors cut to rank 2 with a matching pattern load.
  auto rk = ReadAdapter(Copy("qwen3-tiny-lora-all",
                             [](Json& j) { j["rank_pattern"] = {{"down_proj", 2}}; },
                             [](TensorEdit& e) {
                               if (e.name.find("down_proj.lora_A") != std::string::npos) {
                                 e.values.resize(2 * e.shape[1]);
                                 e.shape = Shape{2, e.shape[1]};
                               } else if (e.name.find("down_proj.lora_B") != std::string::npos) {
                                 std::vector<float> v;
                                 for (int64_t o = 0; o < e.shape[0]; ++o)
                                   for (int r = 0; r < 2; ++r) v.push_back(e.values[o * e.shape[1] + r]);
                                 e.values = v;
                                 e.shape = Shape{e.shape[0], 2};
                               }
                               return true;
                             }),
                        &base_);
  ASSERT_TRUE(rk.ok()) << rk.error().ToString();
  EXPECT_EQ(rk->Find(2, LoraTarget::kDown)->rank(), 2);
  EXPECT_FLOAT_EQ(rk->Find(2, LoraTarget::kDown)->scale, 8.0f);  // alpha 16 / r 2
  EXPECT_EQ(rk->Find(2, LoraTarget::kUp)->rank(), 8);
}

TEST_F(LoraAdapterTest, LayersToTransformAndRegexTargets) {
  auto drop_layers = [](TensorEdit& e) {
    return e.name.find("layers.2.") == std::string::npos && e.name.find("layers.3.") == std::string::npos;
  };
  auto two = ReadAdapter(Copy("qwen3-tiny-lora-all", [](Json& j) { j["layers_to_transform"] = {0, 1}; }, drop_layers),
                         &base_);
  ASSERT_TRUE(two.ok()) << two.error().ToString();
  EXPECT_EQ(two->NumLinears(), 14);
  EXPECT_FALSE(two->all_layers);
  // Without layers_to_transform the same file lacks layers 2 and 3.
  Error e = ExpectError(Copy("qwen3-tiny-lora-all", nullptr, drop_layers), ErrorCode::kNotFound);
  EXPECT_THAT(e.message, HasSubstr("missing tensor `base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight`"));
  // A regex target (full match over module names) selecting q and v.
  auto re = ReadAdapter(Copy("qwen3-tiny-lora-qv", [](Json& j) { j["target_modules"] = ".*\\.(q_proj|v_proj)"; }),
                        &base_);
  ASSERT_TRUE(re.ok()) << re.error().ToString();
  EXPECT_EQ(re->NumLinears(), 8);
  // all-linear.
  auto al = ReadAdapter(Copy("qwen3-tiny-lora-all", [](Json& j) { j["target_modules"] = "all-linear"; }), &base_);
  ASSERT_TRUE(al.ok()) << al.error().ToString();
  EXPECT_EQ(al->NumLinears(), 28);
}

TEST_F(LoraAdapterTest, WrongRankShapes) {
  Error e = ExpectError(Copy("qwen3-tiny-lora-all", [](Json& j) { j["r"] = 4; }), ErrorCode::kInvalidFormat);
  EXPECT_THAT(e.message, HasSubstr("do not have rank 4"));
  // lora_B with a different rank than lora_A.
  e = ExpectError(Copy("qwen3-tiny-lora-all", nullptr,
                       [](TensorEdit& t) {
                         if (t.name == "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight") {
                           t.values.resize(t.shape[0] * 4);
                           t.shape = Shape{t.shape[0], 4};
                         }
                         return true;
                       }),
                  ErrorCode::kInvalidFormat);
  EXPECT_THAT(e.message, HasSubstr("model.layers.1.mlp.up_proj"));
  EXPECT_THAT(e.message, HasSubstr("[192, 4]"));
  // MLX: lora_parameters.rank disagrees with the tensors.
  e = ExpectError(Copy("qwen3-tiny-lora-all-mlx", [](Json& j) { j["lora_parameters"]["rank"] = 16; }),
                  ErrorCode::kInvalidFormat);
  EXPECT_THAT(e.message, HasSubstr("lora_parameters.rank"));
}

TEST_F(LoraAdapterTest, MissingTensors) {
  Error e = ExpectError(Copy("qwen3-tiny-lora-all", nullptr,
                             [](TensorEdit& t) {
                               return t.name != "base_model.model.model.layers.2.self_attn.o_proj.lora_B.weight";
                             }),
                        ErrorCode::kNotFound);
  EXPECT_THAT(e.message, HasSubstr("missing tensor `base_model.model.model.layers.2.self_attn.o_proj.lora_B.weight`"));
  e = ExpectError(Copy("qwen3-tiny-lora-all-mlx", nullptr,
                       [](TensorEdit& t) { return t.name != "model.layers.3.mlp.gate_proj.lora_a"; }),
                  ErrorCode::kNotFound);
  EXPECT_THAT(e.message, HasSubstr("missing tensor `model.layers.3.mlp.gate_proj.lora_a`"));
  // A tensor the config does not target.
  e = ExpectError(Copy("qwen3-tiny-lora-all", [](Json& j) { j["target_modules"] = {"q_proj", "v_proj"}; }),
                  ErrorCode::kInvalidFormat);
  EXPECT_THAT(e.message, HasSubstr("is not targeted by adapter_config.json"));
  e = ExpectError(Copy("qwen3-tiny-lora-all", [](Json& j) { j.erase("r"); j["r"] = 8; },
                       [](TensorEdit&) { return false; }),
                  ErrorCode::kNotFound);
}

TEST_F(LoraAdapterTest, UnknownTargetModule) {
  Error e = ExpectError(Copy("qwen3-tiny-lora-qv", [](Json& j) { j["target_modules"] = {"q_proj", "c_attn"}; }),
                        ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("unknown target module \"c_attn\""));
  e = ExpectError(Copy("qwen3-tiny-lora-qv", [](Json& j) { j["target_modules"] = ".*\\.query_key_value"; }),
                  ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("matches no module"));
  e = ExpectError(Copy("qwen3-tiny-lora-qv", nullptr,
                       [](TensorEdit& t) {
                         const auto p = t.name.find("v_proj");
                         if (p != std::string::npos) t.name.replace(p, 6, "x_proj");
                         return true;
                       }),
                  ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("unknown target module `model.layers.0.self_attn.x_proj`"));
  e = ExpectError(Copy("qwen3-tiny-lora-all-mlx", [](Json& j) { j["lora_parameters"]["keys"] = {"attention.wq"}; }),
                  ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("unknown target module \"attention.wq\""));
  // Targets that exist but are not adapters we apply.
  e = ExpectError(Copy("qwen3-tiny-lora-qv", [](Json& j) { j["target_modules"] = {"q_proj", "v_proj", "embed_tokens"}; }),
                  ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("embedding / lm_head"));
  e = ExpectError(Copy("qwen3-tiny-lora-qv", [](Json& j) { j["target_modules"] = {"q_proj", "v_proj", "lm_head"}; }),
                  ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("lm_head"));
}

TEST_F(LoraAdapterTest, BaseModelMismatch) {
  formats::ModelConfig wider = base_;
  wider.d_model = 128;  // hidden_size
  auto r = ReadAdapter(kFx + "/qwen3-tiny-lora-all", &wider);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidFormat);
  EXPECT_THAT(r.error().message, HasSubstr("hidden_size 128"));
  EXPECT_THAT(r.error().message, HasSubstr("another base model"));
  formats::ModelConfig shallow = base_;
  shallow.n_layers = 2;
  r = ReadAdapter(kFx + "/qwen3-tiny-lora-qv", &shallow);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("the base model has only 2 layers"));
  r = ReadAdapter(kFx + "/qwen3-tiny-lora-all-mlx", &shallow);  // num_layers 4 > 2 blocks
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("only 2 layers"));
  formats::ModelConfig ffn = base_;
  ffn.ffn_dim = 256;
  r = ReadAdapter(kFx + "/qwen3-tiny-lora-all-mlx", &ffn);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("intermediate_size 256"));
}

TEST_F(LoraAdapterTest, RefusedFeaturesNameTheField) {
  struct Case {
    std::function<void(Json&)> edit;
    const char* needle;
  };
  const Case cases[] = {
      {[](Json& j) { j["use_dora"] = true; }, "use_dora"},
      {[](Json& j) { j["modules_to_save"] = {"lm_head"}; }, "modules_to_save"},
      {[](Json& j) { j["bias"] = "lora_only"; }, "bias \"lora_only\""},
      {[](Json& j) { j["lora_bias"] = true; }, "lora_bias"},
      {[](Json& j) { j["init_lora_weights"] = "pissa_niter_4"; }, "init_lora_weights \"pissa_niter_4\""},
      {[](Json& j) { j["init_lora_weights"] = "loftq"; }, "init_lora_weights"},
      {[](Json& j) { j["init_lora_weights"] = "olora"; }, "init_lora_weights"},
      {[](Json& j) { j["layer_replication"] = {{0, 2}}; }, "layer_replication"},
      {[](Json& j) { j["peft_type"] = "IA3"; }, "peft_type \"IA3\""},
      {[](Json& j) { j["layers_pattern"] = "h"; }, "layers_pattern"},
  };
  for (const auto& c : cases) {
    Error e = ExpectError(Copy("qwen3-tiny-lora-qv", c.edit), ErrorCode::kUnsupported);
    EXPECT_THAT(e.message, HasSubstr(c.needle));
  }
  // DoRA / full-weight / embedding tensors found in the file even when the config does not say so.
  Error e = ExpectError(Copy("qwen3-tiny-lora-qv", nullptr,
                             [](TensorEdit& t) {
                               if (t.name == "base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight")
                                 t.name = "base_model.model.model.layers.3.self_attn.v_proj.lora_magnitude_vector";
                               return true;
                             }),
                        ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("DoRA"));
  e = ExpectError(Copy("qwen3-tiny-lora-qv", nullptr,
                       [](TensorEdit& t) {
                         if (t.name == "base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight")
                           t.name = "base_model.model.lm_head.weight";
                         return true;
                       }),
                  ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("modules_to_save"));
  e = ExpectError(Copy("qwen3-tiny-lora-qv", nullptr,
                       [](TensorEdit& t) {
                         if (t.name == "base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight")
                           t.name = "base_model.model.model.embed_tokens.lora_embedding_A";
                         return true;
                       }),
                  ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("embedding"));
  // MLX: DoRA by type, by magnitude tensor; num_layers missing.
  e = ExpectError(Copy("qwen3-tiny-lora-all-mlx", [](Json& j) { j["fine_tune_type"] = "dora"; }), ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("fine_tune_type \"dora\""));
  e = ExpectError(Copy("qwen3-tiny-lora-all-mlx", nullptr,
                       [](TensorEdit& t) {
                         if (t.name == "model.layers.0.self_attn.q_proj.lora_b") t.name = "model.layers.0.self_attn.q_proj.m";
                         return true;
                       }),
                  ErrorCode::kUnsupported);
  EXPECT_THAT(e.message, HasSubstr("DoRA"));
  e = ExpectError(Copy("qwen3-tiny-lora-all-mlx", [](Json& j) { j.erase("num_layers"); }), ErrorCode::kInvalidFormat);
  EXPECT_THAT(e.message, HasSubstr("num_layers"));
}

TEST_F(LoraAdapterTest, MissingFilesAndFormats) {
  auto r = ReadAdapter((tmp_ / "nope").string(), &base_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  fs::create_directories(tmp_ / "empty");
  r = ReadAdapter((tmp_ / "empty").string(), &base_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("adapter_config.json"));
}

// Reads both and compares every linear bit for bit (f32 internal values, rank, scale).
void ExpectSameAdapter(const LoraAdapter& x, const LoraAdapter& y) {
  ASSERT_EQ(x.NumLinears(), y.NumLinears());
  for (int64_t i = 0; i < (int64_t)x.layers.size(); ++i)
    for (LoraTarget t : kAllLoraTargets) {
      const LoraLinear* a = x.Find(i, t);
      const LoraLinear* b = y.Find(i, t);
      ASSERT_EQ(a == nullptr, b == nullptr);
      if (!a) continue;
      EXPECT_EQ(a->scale, b->scale);
      EXPECT_EQ(a->file_dtype, b->file_dtype);
      ASSERT_TRUE(a->a.shape() == b->a.shape() && a->b.shape() == b->b.shape());
      EXPECT_EQ(std::memcmp(a->a.data(), b->a.data(), a->a.NumBytes()), 0);
      EXPECT_EQ(std::memcmp(a->b.data(), b->b.data(), a->b.NumBytes()), 0);
    }
}

TEST_F(LoraAdapterTest, ConvertPeftMlxIsLossless) {
  auto peft = ReadAdapter(kFx + "/qwen3-tiny-lora-all", nullptr);
  auto mlx = ReadAdapter(kFx + "/qwen3-tiny-lora-all-mlx", nullptr);
  ASSERT_TRUE(peft.ok() && mlx.ok());
  ExpectSameAdapter(*peft, *mlx);  // the fixtures are the same adapter in the two layouts
  ASSERT_TRUE(WriteMlxAdapter(*peft, (tmp_ / "to_mlx").string()).ok());
  auto back = ReadAdapter((tmp_ / "to_mlx").string(), &base_);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->format, AdapterFormat::kMlx);
  ExpectSameAdapter(*peft, *back);
  ASSERT_TRUE(WritePeftAdapter(*back, (tmp_ / "to_peft").string()).ok());
  auto again = ReadAdapter((tmp_ / "to_peft").string(), &base_);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  ExpectSameAdapter(*peft, *again);
  // bf16 adapter round trip keeps bf16 tensors.
  auto qv = ReadAdapter(kFx + "/qwen3-tiny-lora-qv", nullptr);
  ASSERT_TRUE(qv.ok());
  ASSERT_TRUE(WriteMlxAdapter(*qv, (tmp_ / "qv_mlx").string()).ok());
  auto qv_back = ReadAdapter((tmp_ / "qv_mlx").string(), &base_);
  ASSERT_TRUE(qv_back.ok()) << qv_back.error().ToString();
  ExpectSameAdapter(*qv, *qv_back);
  // Layers 0..1 of 4 cannot be MLX's "last num_layers".
  auto two = ReadAdapter(Copy("qwen3-tiny-lora-all", [](Json& j) { j["layers_to_transform"] = {0, 1}; },
                              [](TensorEdit& e) {
                                return e.name.find("layers.2.") == std::string::npos &&
                                       e.name.find("layers.3.") == std::string::npos;
                              }),
                         &base_);
  ASSERT_TRUE(two.ok());
  auto st = WriteMlxAdapter(*two, (tmp_ / "bad_mlx").string());
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("LAST num_layers"));
  // ... but PEFT keeps them.
  ASSERT_TRUE(WritePeftAdapter(*two, (tmp_ / "two_peft").string()).ok());
  auto two_back = ReadAdapter((tmp_ / "two_peft").string(), &base_);
  ASSERT_TRUE(two_back.ok()) << two_back.error().ToString();
  ExpectSameAdapter(*two, *two_back);
}

}  // namespace
}  // namespace petrel::model::lora
