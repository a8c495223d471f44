#include "formats/hf_config.h"

#include "core/mmap_file.h"

#include <cmath>
#include <filesystem>

namespace petrel::formats {

namespace {

// Typed access to optional config keys; a present key of the wrong type is an error naming it.
struct Reader {
  const Json& j;
  std::string what;

  bool Has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  Result<int64_t> Int(const char* key, int64_t def) const {
    if (!Has(key)) return def;
    if (!j[key].is_number_integer()) return InvalidFormat(what, ": \"", key, "\" must be an integer, got ", DumpJson(j[key]));
    return j[key].get<int64_t>();
  }
  Result<int64_t> RequiredInt(const char* key) const {
    if (!Has(key)) return InvalidFormat(what, ": missing required key \"", key, "\"");
    return Int(key, 0);
  }
  Result<double> Num(const char* key, double def) const {
    if (!Has(key)) return def;
    if (!j[key].is_number()) return InvalidFormat(what, ": \"", key, "\" must be a number, got ", DumpJson(j[key]));
    return j[key].get<double>();
  }
  Result<bool> Bool(const char* key, bool def) const {
    if (!Has(key)) return def;
    if (!j[key].is_boolean()) return InvalidFormat(what, ": \"", key, "\" must be true or false, got ", DumpJson(j[key]));
    return j[key].get<bool>();
  }
  Result<std::string> Str(const char* key, std::string def) const {
    if (!Has(key)) return def;
    if (!j[key].is_string()) return InvalidFormat(what, ": \"", key, "\" must be a string, got ", DumpJson(j[key]));
    return j[key].get<std::string>();
  }
  // An int or a list of ints (eos_token_id).
  Result<std::vector<int64_t>> IntList(const char* key) const {
    std::vector<int64_t> out;
    if (!Has(key)) return out;
    if (j[key].is_number_integer()) return std::vector<int64_t>{j[key].get<int64_t>()};
    if (!j[key].is_array()) return InvalidFormat(what, ": \"", key, "\" must be an integer or a list of integers");
    for (const auto& v : j[key]) {
      if (!v.is_number_integer()) return InvalidFormat(what, ": \"", key, "\" must contain integers only");
      out.push_back(v.get<int64_t>());
    }
    return out;
  }
};

Result<std::string> ArchitectureOf(const Json& j, const std::string& what) {
  if (j.contains("model_type") && j["model_type"].is_string()) return j["model_type"].get<std::string>();
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    const std::string a = j["architectures"][0].get<std::string>();
    if (a == "LlamaForCausalLM") return std::string("llama");
    if (a == "MistralForCausalLM") return std::string("mistral");
    if (a == "Qwen2ForCausalLM") return std::string("qwen2");
    if (a == "Qwen3ForCausalLM") return std::string("qwen3");
    return Unsupported(what, ": architecture \"", a, "\" is not supported (llama, mistral, qwen2, qwen3 are)");
  }
  return InvalidFormat(what, ": neither \"model_type\" nor \"architectures\" is present");
}

// RoPE parameters: transformers 5.x "rope_parameters" (with rope_theta inside) or 4.x "rope_theta"
// plus an optional "rope_scaling" dict ("type" or "rope_type").
Status ParseRope(const Json& j, const std::string& what, ModelConfig& c) {
  Reader top{j, what};
  PETREL_TRY(c.rope.theta, top.Num("rope_theta", 10000.0));
  // transformers 4.x reads partial_rotary_factor from the top level of the config
  // (getattr(config, "partial_rotary_factor", 1.0)); 5.x from rope_parameters (checked below).
  PETREL_TRY(double top_prf, top.Num("partial_rotary_factor", 1.0));
  if (top_prf != 1.0) return Unsupported(what, ": partial_rotary_factor ", top_prf, " (only 1.0)");
  const Json* params = nullptr;
  std::string where;
  if (top.Has("rope_parameters")) {
    params = &j["rope_parameters"];
    where = what + ": rope_parameters";
  } else if (top.Has("rope_scaling")) {
    params = &j["rope_scaling"];
    where = what + ": rope_scaling";
  }
  if (!params) return OkStatus();
  if (!params->is_object()) return InvalidFormat(where, " must be an object");
  // A per-layer-type dict ({"full_attention": {...}, "sliding_attention": {...}}) is not used by
  // these architectures; refuse it by name rather than guess.
  if (params->contains("full_attention")) return Unsupported(where, ": per-layer-type RoPE parameters");
  Reader r{*params, where};
  PETREL_TRY(c.rope.theta, r.Num("rope_theta", c.rope.theta));
  std::string type;
  PETREL_TRY(type, r.Str("rope_type", ""));
  if (type.empty()) {
    PETREL_TRY(type, r.Str("type", "default"));
  }
  PETREL_TRY(c.rope.factor, r.Num("factor", 1.0));
  PETREL_TRY(double prf, r.Num("partial_rotary_factor", 1.0));
  if (prf != 1.0) return Unsupported(where, ": partial_rotary_factor ", prf, " (only 1.0)");
  if (type == "default") {
    c.rope.type = RopeType::kDefault;
  } else if (type == "linear") {
    c.rope.type = RopeType::kLinear;
  } else if (type == "llama3") {
    c.rope.type = RopeType::kLlama3;
    PETREL_TRY(c.rope.low_freq_factor, r.Num("low_freq_factor", 1.0));
    PETREL_TRY(c.rope.high_freq_factor, r.Num("high_freq_factor", 4.0));
    PETREL_TRY(c.rope.original_max_position, r.RequiredInt("original_max_position_embeddings"));
    if (c.rope.high_freq_factor <= c.rope.low_freq_factor)
      return InvalidFormat(where, ": high_freq_factor must exceed low_freq_factor");
  } else if (type == "yarn") {
    c.rope.type = RopeType::kYarn;
    PETREL_TRY(c.rope.original_max_position, r.Int("original_max_position_embeddings", 0));
    PETREL_TRY(c.rope.beta_fast, r.Num("beta_fast", 32.0));
    PETREL_TRY(c.rope.beta_slow, r.Num("beta_slow", 1.0));
    PETREL_TRY(c.rope.attention_factor, r.Num("attention_factor", 0.0));
    PETREL_TRY(c.rope.mscale, r.Num("mscale", 0.0));
    PETREL_TRY(c.rope.mscale_all_dim, r.Num("mscale_all_dim", 0.0));
    PETREL_TRY(c.rope.truncate, r.Bool("truncate", true));
  } else {
    return Unsupported(where, ": rope type \"", type, "\" (default, linear, llama3 and yarn are supported)");
  }
  if (c.rope.type != RopeType::kDefault && !(c.rope.factor > 0))
    return InvalidFormat(where, ": factor must be > 0");
  return OkStatus();
}

}  // namespace

const char* RopeTypeName(RopeType t) {
  switch (t) {
    case RopeType::kDefault: return "default";
    case RopeType::kLinear: return "linear";
    case RopeType::kLlama3: return "llama3";
    case RopeType::kYarn: return "yarn";
  }
  return "?";
}

Result<ModelConfig> ParseHfConfig(const Json& j, const std::string& what) {
  if (!j.is_object()) return InvalidFormat(what, ": not a JSON object");
  ModelConfig c;
  PETREL_TRY(c.architecture, ArchitectureOf(j, what));
  if (c.architecture != "llama" && c.architecture != "mistral" && c.architecture != "qwen2" &&
      c.architecture != "qwen3") {
    return Unsupported(what, ": model_type \"", c.architecture,
                       "\" is not supported (llama, mistral, qwen2, qwen3 are)");
  }
  Reader r{j, what};
  PETREL_TRY(c.vocab_size, r.RequiredInt("vocab_size"));
  PETREL_TRY(c.d_model, r.RequiredInt("hidden_size"));
  PETREL_TRY(c.n_layers, r.RequiredInt("num_hidden_layers"));
  PETREL_TRY(c.n_heads, r.RequiredInt("num_attention_heads"));
  PETREL_TRY(c.n_kv_heads, r.Int("num_key_value_heads", c.n_heads));
  PETREL_TRY(c.ffn_dim, r.RequiredInt("intermediate_size"));
  if (c.n_heads <= 0) return InvalidFormat(what, ": num_attention_heads must be > 0");
  PETREL_TRY(c.head_dim, r.Int("head_dim", c.d_model / c.n_heads));
  PETREL_TRY(c.rms_eps, r.Num("rms_norm_eps", 1e-6));
  PETREL_TRY(c.max_position_embeddings, r.Int("max_position_embeddings", 2048));
  PETREL_TRY(c.tie_embeddings, r.Bool("tie_word_embeddings", false));
  PETREL_TRY(std::string act, r.Str("hidden_act", "silu"));
  if (act != "silu") return Unsupported(what, ": hidden_act \"", act, "\" (only silu)");
  PETREL_TRY(bool attention_bias, r.Bool("attention_bias", false));
  PETREL_TRY(c.mlp_bias, r.Bool("mlp_bias", false));
  if (c.architecture == "qwen2") {
    c.qkv_bias = true;  // Qwen2Attention: q/k/v always carry a bias, o_proj none
  } else {
    c.qkv_bias = attention_bias;
    c.o_bias = attention_bias;
  }
  c.qk_norm = c.architecture == "qwen3";

  // Sliding window: mistral applies it to every layer when set (MistralAttention ignores
  // use_sliding_window); qwen2/qwen3 only with use_sliding_window, from layer max_window_layers on;
  // llama has none (LlamaAttention never reads sliding_window); 5.x configs list layer_types.
  PETREL_TRY(int64_t window, r.Int("sliding_window", 0));
  PETREL_TRY(bool use_sw, r.Bool("use_sliding_window", false));
  if (c.architecture == "mistral") use_sw = true;
  if (c.architecture == "llama") use_sw = false;
  PETREL_TRY(int64_t max_window_layers, r.Int("max_window_layers", 0));
  c.layer_sliding.assign(c.n_layers > 0 && c.n_layers < 100000 ? c.n_layers : 0, false);
  if (r.Has("layer_types")) {
    const Json& lt = j["layer_types"];
    if (!lt.is_array() || (int64_t)lt.size() != c.n_layers)
      return InvalidFormat(what, ": layer_types must be a list of ", c.n_layers, " strings");
    for (size_t i = 0; i < lt.size(); ++i) {
      if (!lt[i].is_string()) return InvalidFormat(what, ": layer_types[", i, "] is not a string");
      const std::string t = lt[i].get<std::string>();
      if (t == "sliding_attention") c.layer_sliding[i] = true;
      else if (t != "full_attention") return Unsupported(what, ": layer_types[", i, "] = \"", t, "\"");
    }
  } else if (use_sw && window > 0) {
    for (int64_t i = 0; i < (int64_t)c.layer_sliding.size(); ++i)
      c.layer_sliding[i] = c.architecture == "mistral" || i >= max_window_layers;
  }
  bool any_sliding = false;
  for (bool s : c.layer_sliding) any_sliding |= s;
  c.sliding_window = any_sliding ? window : 0;
  if (any_sliding && window <= 0) return InvalidFormat(what, ": sliding attention without sliding_window");
  if (!any_sliding) c.layer_sliding.clear();

  PETREL_TRY(ParseRope(j, what, c));
  if (c.rope.type == RopeType::kYarn && c.rope.original_max_position == 0)
    c.rope.original_max_position = c.max_position_embeddings;

  std::string dtype;
  PETREL_TRY(dtype, r.Str("dtype", ""));
  if (dtype.empty()) {
    PETREL_TRY(dtype, r.Str("torch_dtype", "bfloat16"));
  }
  auto dt = ParseFloatDType(dtype);
  if (!dt.ok()) return Unsupported(what, ": dtype \"", dtype, "\" (float32, float16, bfloat16)");
  c.dtype = *dt;
  PETREL_TRY(c.bos_token_id, r.Int("bos_token_id", -1));
  PETREL_TRY(c.eos_token_ids, r.IntList("eos_token_id"));
  if (Status st = c.Validate(); !st.ok()) return st.error().WithContext(what);
  return c;
}

Result<ModelConfig> LoadHfConfig(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  PETREL_TRY(Json j, ReadJsonFile(path));
  return ParseHfConfig(j, path);
}

Result<GenerationConfig> ParseGenerationConfig(const Json& j, const std::string& what) {
  if (!j.is_object()) return InvalidFormat(what, ": not a JSON object");
  Reader r{j, what};
  GenerationConfig g;
  g.present = true;
  PETREL_TRY(g.do_sample, r.Bool("do_sample", false));
  PETREL_TRY(g.temperature, r.Num("temperature", 1.0));
  PETREL_TRY(g.top_p, r.Num("top_p", 1.0));
  PETREL_TRY(g.top_k, r.Int("top_k", 0));
  PETREL_TRY(g.min_p, r.Num("min_p", 0.0));
  PETREL_TRY(g.repetition_penalty, r.Num("repetition_penalty", 1.0));
  PETREL_TRY(g.eos_token_ids, r.IntList("eos_token_id"));
  return g;
}

Result<GenerationConfig> LoadGenerationConfig(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "generation_config.json").string();
  if (!FileExists(path)) return GenerationConfig{};
  PETREL_TRY(Json j, ReadJsonFile(path));
  return ParseGenerationConfig(j, path);
}

}  // namespace petrel::formats
