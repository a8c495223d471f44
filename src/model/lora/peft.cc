// PEFT LoRA adapters: adapter_config.json (LoraConfig) + adapter_model.safetensors with keys
//   base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight   [r, in]
//   base_model.model.model.layers.{i}.self_attn.q_proj.lora_B.weight   [out, r]
// Which modules are adapted follows PEFT's own rules (peft/tuners/tuners_utils.py
// check_target_module_exists, peft/utils/other.py get_pattern_key), evaluated over the module
// names of a transformers Llama/Qwen model:
//   - target_modules: a list (a module matches when its name equals an entry or ends with
//     ".entry"), a regex string (full match), or "all-linear";
//   - exclude_modules: the same forms, applied first;
//   - layers_to_transform (int or list), with layers_pattern "layers";
//   - rank_pattern / alpha_pattern: the first key k with re.match(r"(.*\.)?(k)$", name) wins.
// scale = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora.
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "core/json_util.h"
#include "core/log.h"
#include "core/mmap_file.h"
#include "formats/safetensors.h"
#include "model/lora/adapter.h"

namespace petrel::model::lora::internal {

namespace {

constexpr const char* kPrefix = "base_model.model.";

// Every module name of a transformers *ForCausalLM Llama-family model with n_layers blocks, with
// the linear target it is (if any). Regex and suffix matching run over this list, as PEFT runs
// them over model.named_modules().
struct ModuleName {
  std::string name;
  int64_t layer = -1;
  std::optional<LoraTarget> target;
};

std::vector<ModuleName> AllModules(int64_t n_layers) {
  std::vector<ModuleName> m;
  m.push_back({"model", -1, {}});
  m.push_back({"model.embed_tokens", -1, {}});
  for (int64_t i = 0; i < n_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    for (const char* s : {"", ".self_attn", ".self_attn.q_norm", ".self_attn.k_norm", ".mlp",
                          ".mlp.act_fn", ".input_layernorm", ".post_attention_layernorm"})
      m.push_back({p + s, i, {}});
    for (LoraTarget t : kAllLoraTargets) m.push_back({p + "." + LoraTargetPath(t), i, t});
  }
  m.push_back({"model.norm", -1, {}});
  m.push_back({"model.rotary_emb", -1, {}});
  m.push_back({"lm_head", -1, {}});
  return m;
}

bool EndsWithModule(const std::string& name, const std::string& key) {
  return name == key || (name.size() > key.size() &&
                         name.compare(name.size() - key.size(), key.size(), key) == 0 &&
                         name[name.size() - key.size() - 1] == '.');
}

// A target_modules / exclude_modules value: a list of names, a regex, or nothing.
struct ModuleSpec {
  bool present = false;
  bool is_regex = false;
  std::string regex_text;
  std::regex regex;
  std::vector<std::string> list;

  bool Matches(const std::string& name) const {
    if (!present) return false;
    if (is_regex) return std::regex_match(name, regex);
    for (const auto& k : list)
      if (EndsWithModule(name, k)) return true;
    return false;
  }
};

Result<ModuleSpec> ParseModuleSpec(const Json& cfg, const char* field) {
  ModuleSpec s;
  if (!cfg.contains(field) || cfg[field].is_null()) return s;
  const Json& v = cfg[field];
  s.present = true;
  if (v.is_string()) {
    s.is_regex = true;
    s.regex_text = v.get<std::string>();
    try {
      s.regex = std::regex(s.regex_text, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return InvalidFormat("adapter_config.json: ", field, ": bad regex \"", s.regex_text, "\": ", e.what());
    }
    return s;
  }
  if (!v.is_array()) return InvalidFormat("adapter_config.json: ", field, " must be a list or a string");
  for (const auto& e : v) {
    if (!e.is_string()) return InvalidFormat("adapter_config.json: ", field, " entries must be strings");
    s.list.push_back(e.get<std::string>());
  }
  return s;
}

// rank_pattern / alpha_pattern: ordered (key, value); first match wins as in get_pattern_key.
struct Pattern {
  std::vector<std::pair<std::regex, double>> entries;
  std::vector<std::string> keys;
};

Result<Pattern> ParsePattern(const Json& cfg, const char* field) {
  Pattern p;
  if (!cfg.contains(field) || cfg[field].is_null()) return p;
  const Json& v = cfg[field];
  if (!v.is_object()) return InvalidFormat("adapter_config.json: ", field, " must be an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_number())
      return InvalidFormat("adapter_config.json: ", field, "[\"", it.key(), "\"] must be a number");
    try {
      p.entries.emplace_back(std::regex("(.*\\.)?(" + it.key() + ")"), it.value().get<double>());
    } catch (const std::regex_error& e) {
      return InvalidFormat("adapter_config.json: ", field, ": bad key \"", it.key(), "\": ", e.what());
    }
    p.keys.push_back(it.key());
  }
  return p;
}

double PatternValue(const Pattern& p, const std::string& name, double dflt) {
  for (const auto& [re, value] : p.entries)
    if (std::regex_match(name, re)) return value;
  return dflt;
}

bool Truthy(const Json& cfg, const char* field) {
  if (!cfg.contains(field)) return false;
  const Json& v = cfg[field];
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_array() || v.is_object()) return !v.empty();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get<std::string>().empty();
  return true;
}

// Refuses the LoraConfig options that change the math (or the base weights) and that we do not
// implement, naming the field. Options that only matter for training are ignored.
Status CheckUnsupported(const Json& cfg) {
  const std::string peft_type = JsonString(cfg, "peft_type", "");
  if (peft_type != "LORA")
    return Unsupported("adapter_config.json: peft_type \"", peft_type, "\" is not supported (only LORA)");
  if (Truthy(cfg, "use_dora"))
    return Unsupported("adapter_config.json: use_dora: DoRA adapters are not supported (merge them "
                       "with PEFT first)");
  if (Truthy(cfg, "modules_to_save"))
    return Unsupported("adapter_config.json: modules_to_save (", DumpJson(cfg["modules_to_save"]),
                       "): adapters that carry full copies of modules are not supported");
  if (cfg.contains("bias") && !cfg["bias"].is_null() && cfg["bias"] != "none")
    return Unsupported("adapter_config.json: bias \"", cfg["bias"].is_string() ? cfg["bias"].get<std::string>() : DumpJson(cfg["bias"]),
                       "\": trained biases are not supported (only \"none\")");
  if (Truthy(cfg, "lora_bias"))
    return Unsupported("adapter_config.json: lora_bias: a bias on lora_B is not supported");
  if (cfg.contains("init_lora_weights") && cfg["init_lora_weights"].is_string()) {
    const std::string init = cfg["init_lora_weights"].get<std::string>();
    for (const char* bad : {"pissa", "olora", "loftq", "corda"})
      if (init.rfind(bad, 0) == 0)
        return Unsupported("adapter_config.json: init_lora_weights \"", init,
                           "\": this initialisation modifies the base weights; convert the adapter "
                           "to plain LoRA first");
  }
  for (const char* f : {"layer_replication", "alora_invocation_tokens", "use_qalora", "use_bdlora",
                        "target_parameters", "trainable_token_indices", "megatron_config"}) {
    if (Truthy(cfg, f)) return Unsupported("adapter_config.json: ", f, " is not supported");
  }
  if (Truthy(cfg, "layers_pattern")) {
    const Json& lp = cfg["layers_pattern"];
    const bool ok = (lp.is_string() && lp == "layers") ||
                    (lp.is_array() && lp.size() == 1 && lp[0] == "layers");
    if (!ok) return Unsupported("adapter_config.json: layers_pattern ", DumpJson(lp), " (only \"layers\")");
  }
  return OkStatus();
}

struct PendingLinear {
  const formats::TensorInfo* a = nullptr;
  const formats::TensorInfo* b = nullptr;
};

}  // namespace

Result<LoraAdapter> ReadPeft(const std::string& dir, const formats::ModelConfig* base) {
  namespace fs = std::filesystem;
  const std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
  PETREL_TRY(Json cfg, ReadJsonFile(cfg_path));
  if (auto st = CheckUnsupported(cfg); !st.ok()) return st.error().WithContext(dir);

  const std::string st_path = (fs::path(dir) / "adapter_model.safetensors").string();
  if (!FileExists(st_path)) {
    if (FileExists((fs::path(dir) / "adapter_model.bin").string()))
      return Unsupported(dir, ": adapter_model.bin (pickle) is not supported; save the adapter with "
                              "safe_serialization=True (adapter_model.safetensors)");
    return NotFound(dir, ": no adapter_model.safetensors");
  }
  PETREL_TRY(formats::TensorStore store, formats::TensorStore::OpenFiles({st_path}));

  // Numbers from the config (PEFT defaults when absent).
  auto number = [&](const char* f, double dflt) -> Result<double> {
    if (!cfg.contains(f) || cfg[f].is_null()) return dflt;
    if (!cfg[f].is_number()) return InvalidFormat(cfg_path, ": ", f, " must be a number");
    return cfg[f].get<double>();
  };
  PETREL_TRY(double r_default, number("r", 8));
  PETREL_TRY(double alpha_default, number("lora_alpha", 8));
  const bool rslora = JsonBool(cfg, "use_rslora", false);
  if (r_default < 1) return InvalidFormat(cfg_path, ": r must be >= 1, got ", r_default);
  if (Truthy(cfg, "fan_in_fan_out"))
    LogWarn(cfg_path, ": fan_in_fan_out is set but the targets are Linear layers; ignored (as PEFT does)");
  PETREL_TRY(ModuleSpec targets, ParseModuleSpec(cfg, "target_modules"));
  PETREL_TRY(ModuleSpec excludes, ParseModuleSpec(cfg, "exclude_modules"));
  PETREL_TRY(Pattern rank_pattern, ParsePattern(cfg, "rank_pattern"));
  PETREL_TRY(Pattern alpha_pattern, ParsePattern(cfg, "alpha_pattern"));
  bool all_linear = false;
  if (!targets.present) {  // PEFT's default for llama / qwen2 / qwen3 / mistral
    targets.present = true;
    targets.list = {"q_proj", "v_proj"};
  } else if (targets.is_regex && targets.regex_text == "all-linear") {
    all_linear = true;
  }
  std::set<int64_t> layer_filter;
  const bool has_layer_filter = cfg.contains("layers_to_transform") && !cfg["layers_to_transform"].is_null();
  if (has_layer_filter) {
    const Json& v = cfg["layers_to_transform"];
    if (v.is_number_integer()) {
      layer_filter.insert(v.get<int64_t>());
    } else if (v.is_array()) {
      for (const auto& e : v) {
        if (!e.is_number_integer()) return InvalidFormat(cfg_path, ": layers_to_transform entries must be integers");
        layer_filter.insert(e.get<int64_t>());
      }
    } else {
      return InvalidFormat(cfg_path, ": layers_to_transform must be an integer or a list");
    }
  }

  // Collect the tensors per (layer, target); refuse anything that is not plain lora_A / lora_B.
  std::map<std::pair<int64_t, int>, PendingLinear> found;
  int64_t max_layer = -1;
  for (const auto& [full, info] : store.all()) {
    std::string name = full.rfind(kPrefix, 0) == 0 ? full.substr(std::strlen(kPrefix)) : full;
    auto ends = [&](std::string_view s) {
      return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    auto what = [&]() { return dir + ": tensor `" + full + "`"; };
    if (name.find("lora_magnitude_vector") != std::string::npos)
      return Unsupported(what(), ": DoRA magnitude vector (use_dora): DoRA adapters are not supported");
    if (name.find("lora_embedding_") != std::string::npos)
      return Unsupported(what(), ": embedding adapters (target_modules embed_tokens) are not supported");
    bool is_a = ends(".lora_A.weight"), is_b = ends(".lora_B.weight");
    if (!is_a && !is_b) {
      if (ends(".lora_B.bias")) return Unsupported(what(), ": lora_bias is not supported");
      if (ends(".bias")) return Unsupported(what(), ": trained biases (bias != \"none\") are not supported");
      if (name.find("embed_tokens") != std::string::npos || name.find("lm_head") != std::string::npos)
        return Unsupported(what(), ": full embed_tokens / lm_head weights (modules_to_save or a resized "
                                   "vocabulary) are not supported");
      return InvalidFormat(what(), ": not a LoRA tensor (expected *.lora_A.weight / *.lora_B.weight)");
    }
    const std::string module = name.substr(0, name.size() - std::strlen(".lora_A.weight"));
    int64_t layer;
    LoraTarget t;
    if (!ParseModule(module, &layer, &t)) {
      if (module.find("embed_tokens") != std::string::npos || module.find("lm_head") != std::string::npos)
        return Unsupported(what(), ": embedding / lm_head adapters are not supported");
      return Unsupported(what(), ": unknown target module `", module,
                         "` (supported: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
    }
    if (info->shape.rank != 2)
      return InvalidFormat(what(), ": expected 2 dimensions, got ", info->shape.ToString());
    if (info->dtype != DType::kF32 && info->dtype != DType::kF16 && info->dtype != DType::kBF16)
      return Unsupported(what(), ": dtype ", DTypeName(info->dtype), " (F32, F16, BF16 are supported)");
    PendingLinear& p = found[{layer, (int)t}];
    (is_a ? p.a : p.b) = info;
    max_layer = std::max(max_layer, layer);
  }

  // Which modules the config targets, over the base's module names (or as many layers as the file
  // has when there is no base).
  const int64_t n_layers = base ? base->n_layers : max_layer + 1;
  const auto modules = AllModules(n_layers);
  if (!targets.is_regex || all_linear) {  // every list entry must name something in the model
    for (const auto& k : targets.list) {
      bool any = false;
      for (const auto& m : modules) any = any || EndsWithModule(m.name, k);
      if (k == "embed_tokens" || k == "lm_head" || EndsWithModule("model.embed_tokens", k))
        return Unsupported(cfg_path, ": target_modules \"", k, "\": embedding / lm_head adapters are not supported");
      if (!any)
        return Unsupported(cfg_path, ": target_modules: unknown target module \"", k,
                           "\" (this model has q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
    }
  }
  std::set<std::pair<int64_t, int>> expected;
  bool regex_matched = false;
  for (const auto& m : modules) {
    if (excludes.Matches(m.name)) continue;
    const bool hit = all_linear ? m.target.has_value() : targets.Matches(m.name);
    if (!hit) continue;
    if (has_layer_filter && (m.layer < 0 || !layer_filter.count(m.layer))) continue;
    regex_matched = true;
    if (!m.target) {
      if (m.name == "model.embed_tokens" || m.name == "lm_head")
        return Unsupported(cfg_path, ": target_modules matches `", m.name,
                           "`: embedding / lm_head adapters are not supported");
      return Unsupported(cfg_path, ": target_modules matches `", m.name,
                         "`, which is not a Linear layer petrel can adapt");
    }
    expected.insert({m.layer, (int)*m.target});
  }
  if (targets.is_regex && !all_linear && !regex_matched)
    return Unsupported(cfg_path, ": target_modules regex \"", targets.regex_text,
                       "\" matches no module of the base model (unknown target module)");

  LoraAdapter a;
  a.format = AdapterFormat::kPeft;
  a.all_layers = !has_layer_filter;
  a.base_model_name = JsonString(cfg, "base_model_name_or_path", "");
  a.layers.resize(n_layers);
  for (const auto& [key, p] : found) {
    const auto [layer, ti] = key;
    const LoraTarget t = (LoraTarget)ti;
    const std::string module = "model.layers." + std::to_string(layer) + "." + LoraTargetPath(t);
    const std::string tname = std::string(kPrefix) + module;
    if (!expected.count(key)) {
      if (layer >= n_layers)
        return InvalidFormat(dir, ": tensor `", tname, ".lora_A.weight`: the base model has only ",
                             n_layers, " layers (adapter for another base model?)");
      return InvalidFormat(dir, ": tensor `", tname, ".lora_*.weight`: module `", module,
                           "` is not targeted by adapter_config.json (target_modules / "
                           "layers_to_transform / exclude_modules)");
    }
    if (!p.a) return NotFound(dir, ": missing tensor `", tname, ".lora_A.weight`");
    if (!p.b) return NotFound(dir, ": missing tensor `", tname, ".lora_B.weight`");
    const double rank = PatternValue(rank_pattern, module, r_default);
    const double alpha = PatternValue(alpha_pattern, module, alpha_default);
    if (p.a->shape[0] != (int64_t)rank || p.b->shape[1] != (int64_t)rank) {
      return InvalidFormat(dir, ": ", module, ": lora_A.weight ", p.a->shape.ToString(),
                           " and lora_B.weight ", p.b->shape.ToString(), " do not have rank ",
                           (int64_t)rank, " as adapter_config.json says (r",
                           rank_pattern.keys.empty() ? "" : " / rank_pattern", ")");
    }
    LoraLinear& l = a.layers[layer][ti];
    l.a = ToF32(p.a->data, p.a->dtype, p.a->shape[0], p.a->shape[1], false);
    l.b = ToF32(p.b->data, p.b->dtype, p.b->shape[0], p.b->shape[1], false);
    l.scale = (float)(rslora ? alpha / std::sqrt(rank) : alpha / rank);
    l.file_dtype = p.a->dtype;
    PETREL_TRY(CheckLinearShapes(l, layer, t, base, dir));
  }
  for (const auto& key : expected) {
    if (found.count(key)) continue;
    const std::string module = "model.layers." + std::to_string(key.first) + "." +
                               LoraTargetPath((LoraTarget)key.second);
    // Without a base the layer count comes from the file, so a wholly absent layer cannot be told
    // apart from a smaller model; a module missing inside a present layer is still an error.
    return NotFound(dir, ": missing tensor `", kPrefix, module, ".lora_A.weight` (adapter_config.json targets ",
                    module, ")");
  }
  return a;
}

}  // namespace petrel::model::lora::internal
