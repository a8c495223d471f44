// config.json / generation_config.json parsing: the shipped configs, transformers 4.x and 5.x key
// styles giving the same ModelConfig, RoPE variants, sliding windows, and one test per bad value
// that expects the precise error (code + the key or value named in the message).
#include "formats/hf_config.h"

#include <gtest/gtest.h>

#include <sstream>

#include "core/mmap_file.h"
#include "temp_dir.h"

namespace petrel::formats {
namespace {

using petrel::testing::TempDir;
using petrel::testing::WriteBytes;

using petrel::testing::FailsWith;

Json Fixture(const std::string& rel) {
  auto j = ReadJsonFile(std::string(PETREL_SOURCE_DIR) + "/" + rel);
  EXPECT_TRUE(j.ok()) << j.error().ToString();
  return j.ok() ? *j : Json::object();
}
Json Qwen3Tiny() { return Fixture("tests/fixtures/qwen3-tiny/config.json"); }

// Every field of a config as one string (Visit() plus the fields it leaves out), for equality.
std::string Describe(const ModelConfig& c) {
  std::ostringstream os;
  os.precision(17);
  c.Visit([&](const char* name, const auto& v) { os << name << "=" << v << "; "; });
  const RopeConfig& r = c.rope;
  os << "low_freq_factor=" << r.low_freq_factor << "; high_freq_factor=" << r.high_freq_factor
     << "; original_max_position=" << r.original_max_position << "; beta_fast=" << r.beta_fast
     << "; beta_slow=" << r.beta_slow << "; attention_factor=" << r.attention_factor
     << "; mscale=" << r.mscale << "/" << r.mscale_all_dim << "; truncate=" << r.truncate
     << "; bos=" << c.bos_token_id << "; eos=";
  for (auto e : c.eos_token_ids) os << e << ",";
  os << "; layer_sliding=";
  for (bool s : c.layer_sliding) os << s;
  return os.str();
}

// Rewrites 4.x keys (rope_theta + rope_scaling, torch_dtype) as transformers 5.x writes them
// (rope_parameters with rope_theta inside, dtype, layer_types).
Json To5x(Json j) {
  Json rope = j.contains("rope_scaling") && j["rope_scaling"].is_object() ? j["rope_scaling"]
                                                                          : Json::object();
  if (rope.contains("type")) {
    rope["rope_type"] = rope["type"];
    rope.erase("type");
  }
  if (!rope.contains("rope_type")) rope["rope_type"] = "default";
  rope["rope_theta"] = j.value("rope_theta", 10000.0);
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = rope;
  j["dtype"] = j["torch_dtype"];
  j.erase("torch_dtype");
  j["layer_types"] = Json::array();
  for (int i = 0; i < j["num_hidden_layers"].get<int>(); ++i)
    j["layer_types"].push_back("full_attention");
  return j;
}

// Llama 3.2 1B's config.json (transformers 4.x keys).
Json Llama32() {
  return Json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": false,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64,
    "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 8192,
    "max_position_embeddings": 131072, "mlp_bias": false, "num_attention_heads": 32,
    "num_hidden_layers": 16, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "vocab_size": 128256})");
}

TEST(HfConfig, Qwen3TinyFixtureParses) {
  auto c = ParseHfConfig(Qwen3Tiny());
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->architecture, "qwen3");
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_EQ(c->d_model, 64);
  EXPECT_EQ(c->n_layers, 4);
  EXPECT_EQ(c->n_heads, 4);
  EXPECT_EQ(c->n_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 32);  // explicit, != hidden / heads
  EXPECT_EQ(c->ffn_dim, 192);
  EXPECT_DOUBLE_EQ(c->rms_eps, 1e-6);
  EXPECT_EQ(c->max_position_embeddings, 4096);
  EXPECT_TRUE(c->tie_embeddings);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_EQ(c->sliding_window, 0);
  EXPECT_TRUE(c->layer_sliding.empty());
  EXPECT_EQ(c->rope.type, RopeType::kDefault);
  EXPECT_DOUBLE_EQ(c->rope.theta, 1e6);
  EXPECT_EQ(c->dtype, DType::kBF16);
  EXPECT_EQ(c->bos_token_id, 151643);
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>{151645});
}

// Qwen3-0.6B: 596,049,920 parameters with tied embeddings (the published "0.6B"; 0.44B without
// embeddings). By hand: per layer q 1024x2048 + k,v 2 x 1024x1024 + o 2048x1024 + q/k norms 2x128
// + mlp 3 x 1024x3072 + 2 norms x 1024 = 15,730,944; x 28 = 440,466,432; + embeddings
// 151936x1024 = 155,582,464; + final norm 1024.
TEST(HfConfig, Qwen3SixHundredMConfigHasPublishedParameterCount) {
  auto c = ParseHfConfig(Fixture("bench/models/qwen3-0.6b/config.json"));
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->n_layers, 28);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_TRUE(c->tie_embeddings);
  const int64_t per_layer =
      1024 * 2048 + 2 * 1024 * 1024 + 2048 * 1024 + 2 * 128 + 3 * 1024 * 3072 + 2 * 1024;
  EXPECT_EQ(per_layer, 15730944);
  EXPECT_EQ(28 * per_layer + 151936 * 1024 + 1024, 596049920);
  EXPECT_EQ(c->NumParameters(), 596049920);
  // KV cache: 2 x 28 layers x 8 heads x 128 x 2 bytes = 114,688 bytes per token in bf16.
  EXPECT_EQ(c->KvBytesPerToken(DType::kBF16), 114688);
}

TEST(HfConfig, LoadsFromDirectory) {
  auto c = LoadHfConfig(std::string(PETREL_FIXTURES) + "/qwen3-tiny");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->architecture, "qwen3");
  TempDir dir;
  EXPECT_TRUE(FailsWith(LoadHfConfig(dir.path()), ErrorCode::kNotFound, {dir.File("config.json")}));
  WriteBytes(dir.File("config.json"), "{\"model_type\": \"llama\",");
  EXPECT_TRUE(FailsWith(LoadHfConfig(dir.path()), ErrorCode::kInvalidFormat,
                        {dir.File("config.json"), "invalid JSON"}));
}

TEST(HfConfig, Transformers5KeysGiveTheSameConfig) {
  for (const Json& v4 : {Qwen3Tiny(), Fixture("bench/models/qwen3-0.6b/config.json"), Llama32()}) {
    auto a = ParseHfConfig(v4);
    auto b = ParseHfConfig(To5x(v4));
    ASSERT_TRUE(a.ok()) << a.error().ToString();
    ASSERT_TRUE(b.ok()) << b.error().ToString();
    EXPECT_EQ(Describe(*a), Describe(*b));
  }
  // The 5.x form really is what we think: no top-level rope_theta or torch_dtype.
  Json v5 = To5x(Qwen3Tiny());
  EXPECT_FALSE(v5.contains("rope_theta"));
  EXPECT_FALSE(v5.contains("torch_dtype"));
  EXPECT_DOUBLE_EQ(ParseHfConfig(v5)->rope.theta, 1e6);
}

TEST(HfConfig, ModelTypeFromArchitecturesWhenAbsent) {
  Json j = Qwen3Tiny();
  j.erase("model_type");
  auto c = ParseHfConfig(j);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->architecture, "qwen3");
  j.erase("architectures");
  EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kInvalidFormat,
                        {"config.json", "neither \"model_type\" nor \"architectures\""}));
}

TEST(HfConfig, Llama3RopeScaling) {
  auto c = ParseHfConfig(Llama32());
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->architecture, "llama");
  EXPECT_EQ(c->rope.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(c->rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c->rope.factor, 32.0);
  EXPECT_DOUBLE_EQ(c->rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope.original_max_position, 8192);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->qk_norm);

  Json j = Llama32();
  j["rope_scaling"].erase("original_max_position_embeddings");
  EXPECT_TRUE(FailsWith(
      ParseHfConfig(j), ErrorCode::kInvalidFormat,
      {"config.json: rope_scaling", "missing required key \"original_max_position_embeddings\""}));
  j = Llama32();
  j["rope_scaling"]["low_freq_factor"] = 4.0;
  EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kInvalidFormat,
                        {"rope_scaling", "high_freq_factor must exceed low_freq_factor"}));
}

// Qwen2.5's long-context recipe uses the legacy "type" key.
TEST(HfConfig, YarnRopeScaling) {
  Json j = Qwen3Tiny();
  j["rope_scaling"] = {
      {"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  auto c = ParseHfConfig(j);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->rope.type, RopeType::kYarn);
  EXPECT_DOUBLE_EQ(c->rope.factor, 4.0);
  EXPECT_EQ(c->rope.original_max_position, 32768);
  EXPECT_DOUBLE_EQ(c->rope.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(c->rope.beta_slow, 1.0);
  EXPECT_DOUBLE_EQ(c->rope.attention_factor, 0.0);  // derived from factor later
  EXPECT_TRUE(c->rope.truncate);

  j["rope_scaling"] = {{"rope_type", "yarn"},     {"factor", 40.0},   {"beta_fast", 16},
                       {"beta_slow", 2},          {"mscale", 1.0},    {"mscale_all_dim", 1.0},
                       {"attention_factor", 1.5}, {"truncate", false}};
  c = ParseHfConfig(j);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->rope.original_max_position, 4096);  // defaults to max_position_embeddings
  EXPECT_DOUBLE_EQ(c->rope.beta_fast, 16.0);
  EXPECT_DOUBLE_EQ(c->rope.beta_slow, 2.0);
  EXPECT_DOUBLE_EQ(c->rope.attention_factor, 1.5);
  EXPECT_DOUBLE_EQ(c->rope.mscale, 1.0);
  EXPECT_FALSE(c->rope.truncate);

  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  c = ParseHfConfig(j);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->rope.type, RopeType::kLinear);
  EXPECT_DOUBLE_EQ(c->rope.factor, 2.0);
}

TEST(HfConfig, UnknownModelTypeIsNamed) {
  Json j = Qwen3Tiny();
  j["model_type"] = "gemma2";
  EXPECT_TRUE(FailsWith(ParseHfConfig(j, "/m/config.json"), ErrorCode::kUnsupported,
                        {"/m/config.json", "model_type \"gemma2\" is not supported"}));
  j.erase("model_type");
  j["architectures"] = {"Gemma2ForCausalLM"};
  EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kUnsupported,
                        {"architecture \"Gemma2ForCausalLM\" is not supported"}));
}

TEST(HfConfig, GeluIsRefused) {
  Json j = Qwen3Tiny();
  j["hidden_act"] = "gelu";
  EXPECT_TRUE(
      FailsWith(ParseHfConfig(j), ErrorCode::kUnsupported, {"config.json", "hidden_act \"gelu\""}));
}

// partial_rotary_factor sits in rope_parameters in 5.x and at the top level in 4.x configs
// (transformers reads getattr(config, "partial_rotary_factor", 1.0)); both are refused.
TEST(HfConfig, PartialRotaryIsRefused) {
  Json j = To5x(Qwen3Tiny());
  j["rope_parameters"]["partial_rotary_factor"] = 0.5;
  EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kUnsupported,
                        {"config.json: rope_parameters", "partial_rotary_factor 0.5"}));
  j = Qwen3Tiny();
  j["partial_rotary_factor"] = 0.25;
  EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kUnsupported,
                        {"config.json", "partial_rotary_factor 0.25"}));
  j["partial_rotary_factor"] = 1.0;  // the explicit default is fine
  EXPECT_TRUE(ParseHfConfig(j).ok());
}

TEST(HfConfig, UnknownRopeTypeIsNamed) {
  for (const char* type : {"dynamic", "longrope", "su"}) {
    Json j = Qwen3Tiny();
    j["rope_scaling"] = {{"rope_type", type}, {"factor", 2.0}};
    EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kUnsupported,
                          {"rope_scaling", std::string("rope type \"") + type + "\""}));
  }
  Json j = Qwen3Tiny();
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 0.0}};
  EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kInvalidFormat, {"factor must be > 0"}));
  j["rope_scaling"] = "linear";
  EXPECT_TRUE(
      FailsWith(ParseHfConfig(j), ErrorCode::kInvalidFormat, {"rope_scaling must be an object"}));
}

TEST(HfConfig, WrongKeyTypesNameTheKey) {
  const std::tuple<const char*, Json, const char*> cases[] = {
      {"hidden_size", "64", "\"hidden_size\" must be an integer, got \"64\""},
      {"num_hidden_layers", 4.5, "\"num_hidden_layers\" must be an integer, got 4.5"},
      {"rms_norm_eps", "1e-6", "\"rms_norm_eps\" must be a number"},
      {"tie_word_embeddings", 1, "\"tie_word_embeddings\" must be true or false, got 1"},
      {"hidden_act", 3, "\"hidden_act\" must be a string"},
      {"eos_token_id", "2", "\"eos_token_id\" must be an integer or a list of integers"},
      {"rope_theta", "1e6", "\"rope_theta\" must be a number"},
  };
  for (const auto& [key, value, message] : cases) {
    Json j = Qwen3Tiny();
    j[key] = value;
    EXPECT_TRUE(FailsWith(ParseHfConfig(j, "/m/config.json"), ErrorCode::kInvalidFormat,
                          {"/m/config.json", message}))
        << key;
  }
}

TEST(HfConfig, HeadsMustBeAMultipleOfKvHeads) {
  Json j = Qwen3Tiny();
  j["num_key_value_heads"] = 3;
  EXPECT_TRUE(FailsWith(
      ParseHfConfig(j, "/m/config.json"), ErrorCode::kInvalidFormat,
      {"/m/config.json", "num_attention_heads (4) is not a multiple of num_key_value_heads (3)"}));
}

TEST(HfConfig, OutOfRangeValues) {
  const std::tuple<const char*, Json, const char*> cases[] = {
      {"num_key_value_heads", 0, "num_key_value_heads = 0 is out of range"},
      {"num_attention_heads", 0, "num_attention_heads must be > 0"},
      {"hidden_size", -64, "hidden_size = -64 is out of range"},
      {"head_dim", 33, "head_dim 33 must be even"},
      {"rms_norm_eps", 0.0, "rms_norm_eps = 0 is out of range"},
      {"vocab_size", 0, "vocab_size = 0 is out of range"},
  };
  for (const auto& [key, value, message] : cases) {
    Json j = Qwen3Tiny();
    j[key] = value;
    EXPECT_TRUE(FailsWith(ParseHfConfig(j, "/m/config.json"), ErrorCode::kInvalidFormat,
                          {"/m/config.json", message}))
        << key;
  }
}

TEST(HfConfig, MissingRequiredKeys) {
  for (const char* key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                          "intermediate_size"}) {
    Json j = Qwen3Tiny();
    j.erase(key);
    EXPECT_TRUE(FailsWith(ParseHfConfig(j, "/m/config.json"), ErrorCode::kInvalidFormat,
                          {"/m/config.json", std::string("missing required key \"") + key + "\""}));
    j[key] = nullptr;  // null counts as missing
    EXPECT_FALSE(ParseHfConfig(j).ok()) << key;
  }
  EXPECT_TRUE(
      FailsWith(ParseHfConfig(Json::array()), ErrorCode::kInvalidFormat, {"not a JSON object"}));
}

TEST(HfConfig, UnsupportedDtypeIsNamed) {
  Json j = Qwen3Tiny();
  j["torch_dtype"] = "float8_e4m3fn";
  EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kUnsupported, {"dtype \"float8_e4m3fn\""}));
  j["torch_dtype"] = "float16";
  EXPECT_EQ(ParseHfConfig(j)->dtype, DType::kF16);
  j["dtype"] = "float32";  // 5.x key wins over the 4.x one
  EXPECT_EQ(ParseHfConfig(j)->dtype, DType::kF32);
}

TEST(HfConfig, Qwen2HasQkvBiasLlamaAttentionBiasHasAll) {
  Json j = Qwen3Tiny();
  j["model_type"] = "qwen2";
  auto c = ParseHfConfig(j);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_FALSE(c->qk_norm);
  j["model_type"] = "llama";
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  c = ParseHfConfig(j);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_TRUE(c->o_bias);
  EXPECT_TRUE(c->mlp_bias);
}

TEST(HfConfig, SlidingWindow) {
  Json j = Qwen3Tiny();
  j["model_type"] = "mistral";
  j["sliding_window"] = 4096;
  auto c = ParseHfConfig(j);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->sliding_window, 4096);
  EXPECT_EQ(c->layer_sliding, std::vector<bool>(4, true));
  j["sliding_window"] = nullptr;  // Mistral v0.2+: full attention
  c = ParseHfConfig(j);
  EXPECT_EQ(c->sliding_window, 0);
  EXPECT_TRUE(c->layer_sliding.empty());

  // Qwen2 4.x: use_sliding_window, from layer max_window_layers on.
  j = Qwen3Tiny();
  j["model_type"] = "qwen2";
  j["sliding_window"] = 8;
  j["max_window_layers"] = 2;
  c = ParseHfConfig(j);  // use_sliding_window false: none
  EXPECT_TRUE(c->layer_sliding.empty());
  j["use_sliding_window"] = true;
  c = ParseHfConfig(j);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->layer_sliding, (std::vector<bool>{false, false, true, true}));
  EXPECT_EQ(c->sliding_window, 8);

  // 5.x layer_types.
  j = To5x(Qwen3Tiny());
  j["sliding_window"] = 16;
  j["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention", "full_attention"};
  c = ParseHfConfig(j);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->layer_sliding, (std::vector<bool>{true, false, true, false}));
  j["layer_types"] = {"full_attention"};
  EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kInvalidFormat,
                        {"layer_types must be a list of 4 strings"}));
  j["layer_types"] = {"full_attention", "chunked_attention", "full_attention", "full_attention"};
  EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kUnsupported,
                        {"layer_types[1] = \"chunked_attention\""}));
  j["layer_types"] = {"sliding_attention", "full_attention", "full_attention", "full_attention"};
  j["sliding_window"] = nullptr;
  EXPECT_TRUE(FailsWith(ParseHfConfig(j), ErrorCode::kInvalidFormat,
                        {"sliding attention without sliding_window"}));
}

TEST(GenerationConfig, ParsesSamplingDefaultsAndEosList) {
  Json j = Json::parse(R"({"do_sample": true, "temperature": 0.6, "top_p": 0.95, "top_k": 20,
                           "eos_token_id": [151645, 151643], "bos_token_id": 151643})");
  auto g = ParseGenerationConfig(j, "generation_config.json");
  ASSERT_TRUE(g.ok()) << g.error().ToString();
  EXPECT_TRUE(g->present);
  EXPECT_TRUE(g->do_sample);
  EXPECT_DOUBLE_EQ(g->temperature, 0.6);
  EXPECT_DOUBLE_EQ(g->top_p, 0.95);
  EXPECT_EQ(g->top_k, 20);
  EXPECT_EQ(g->eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  j["temperature"] = "hot";
  EXPECT_TRUE(
      FailsWith(ParseGenerationConfig(j, "/m/generation_config.json"), ErrorCode::kInvalidFormat,
                {"/m/generation_config.json", "\"temperature\" must be a number, got \"hot\""}));
  j["temperature"] = 1;
  j["eos_token_id"] = {1, "2"};
  EXPECT_TRUE(FailsWith(ParseGenerationConfig(j, "g"), ErrorCode::kInvalidFormat,
                        {"\"eos_token_id\" must contain integers only"}));
}

TEST(GenerationConfig, MissingFileGivesDefaults) {
  TempDir dir;
  auto g = LoadGenerationConfig(dir.path());
  ASSERT_TRUE(g.ok()) << g.error().ToString();
  EXPECT_FALSE(g->present);
  auto fx = LoadGenerationConfig(std::string(PETREL_FIXTURES) + "/qwen3-tiny");
  ASSERT_TRUE(fx.ok()) << fx.error().ToString();
  EXPECT_TRUE(fx->present);
  EXPECT_FALSE(fx->eos_token_ids.empty());
}

}  // namespace
}  // namespace petrel::formats
