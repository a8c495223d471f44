// MLX-LM LoRA adapters (mlx_lm/tuner/utils.py linear_to_lora_layers / load_adapters):
// adapter_config.json is the training-args dump; what matters is
//   fine_tune_type  "lora" (dora / full refused)
//   num_layers      the LAST num_layers blocks are adapted (-1 = all)
//   lora_parameters {rank, scale, dropout, keys?}: keys are paths inside a block
//                   ("self_attn.q_proj"); absent = every linear of the block
// and adapters.safetensors holds model.layers.{i}.{path}.lora_a [in, r] and .lora_b [r, out]
// (row-vector convention: y = W x + scale · (x · lora_a) · lora_b). Internally A = lora_a^T,
// B = lora_b^T.
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include "core/json_util.h"
#include "core/mmap_file.h"
#include "formats/safetensors.h"
#include "model/lora/adapter.h"

namespace petrel::model::lora::internal {

Result<LoraAdapter> ReadMlx(const std::string& dir, const formats::ModelConfig* base) {
  namespace fs = std::filesystem;
  const std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
  PETREL_TRY(Json cfg, ReadJsonFile(cfg_path));
  const std::string type = JsonString(cfg, "fine_tune_type", "lora");
  if (type == "dora")
    return Unsupported(cfg_path, ": fine_tune_type \"dora\": DoRA adapters are not supported");
  if (type != "lora")
    return Unsupported(cfg_path, ": fine_tune_type \"", type, "\" is not a LoRA adapter");
  if (!cfg.contains("lora_parameters") || !cfg["lora_parameters"].is_object())
    return InvalidFormat(cfg_path, ": missing object lora_parameters");
  const Json& lp = cfg["lora_parameters"];
  if (!lp.contains("rank") || !lp["rank"].is_number_integer())
    return InvalidFormat(cfg_path, ": lora_parameters.rank must be an integer");
  if (!lp.contains("scale") || !lp["scale"].is_number())
    return InvalidFormat(cfg_path, ": lora_parameters.scale must be a number");
  const int64_t rank = lp["rank"].get<int64_t>();
  const float scale = lp["scale"].get<float>();
  if (rank < 1) return InvalidFormat(cfg_path, ": lora_parameters.rank must be >= 1, got ", rank);
  if (!cfg.contains("num_layers") || !cfg["num_layers"].is_number_integer())
    return InvalidFormat(cfg_path, ": num_layers must be an integer (-1 = all blocks)");
  const int64_t num_layers = cfg["num_layers"].get<int64_t>();

  // Which paths inside a block are adapted.
  std::set<int> keys;
  if (lp.contains("keys") && !lp["keys"].is_null()) {
    if (!lp["keys"].is_array()) return InvalidFormat(cfg_path, ": lora_parameters.keys must be a list");
    for (const auto& k : lp["keys"]) {
      if (!k.is_string()) return InvalidFormat(cfg_path, ": lora_parameters.keys entries must be strings");
      const std::string key = k.get<std::string>();
      bool ok = false;
      for (LoraTarget t : kAllLoraTargets)
        if (key == LoraTargetPath(t)) {
          keys.insert((int)t);
          ok = true;
        }
      if (ok) continue;
      if (key.find("embed_tokens") != std::string::npos || key.find("lm_head") != std::string::npos)
        return Unsupported(cfg_path, ": lora_parameters.keys \"", key,
                           "\": embedding / lm_head adapters are not supported");
      return Unsupported(cfg_path, ": lora_parameters.keys: unknown target module \"", key,
                         "\" (supported: self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj)");
    }
  } else {
    for (LoraTarget t : kAllLoraTargets) keys.insert((int)t);
  }

  const std::string st_path = (fs::path(dir) / "adapters.safetensors").string();
  if (!FileExists(st_path)) return NotFound(dir, ": no adapters.safetensors");
  PETREL_TRY(formats::TensorStore store, formats::TensorStore::OpenFiles({st_path}));

  struct Pending {
    const formats::TensorInfo* a = nullptr;
    const formats::TensorInfo* b = nullptr;
  };
  std::map<std::pair<int64_t, int>, Pending> found;
  int64_t min_layer = INT64_MAX, max_layer = -1;
  for (const auto& [name, info] : store.all()) {
    auto what = [&]() { return dir + ": tensor `" + name + "`"; };
    const size_t dot = name.rfind('.');
    const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
    const std::string module = dot == std::string::npos ? "" : name.substr(0, dot);
    if (leaf == "m") return Unsupported(what(), ": DoRA magnitude: DoRA adapters are not supported");
    if (leaf != "lora_a" && leaf != "lora_b")
      return InvalidFormat(what(), ": not a LoRA tensor (expected *.lora_a / *.lora_b)");
    int64_t layer;
    LoraTarget t;
    if (!ParseModule(module, &layer, &t)) {
      if (module.find("embed_tokens") != std::string::npos || module.find("lm_head") != std::string::npos)
        return Unsupported(what(), ": embedding / lm_head adapters are not supported");
      return Unsupported(what(), ": unknown target module `", module, "`");
    }
    if (info->shape.rank != 2)
      return InvalidFormat(what(), ": expected 2 dimensions, got ", info->shape.ToString());
    if (info->dtype != DType::kF32 && info->dtype != DType::kF16 && info->dtype != DType::kBF16)
      return Unsupported(what(), ": dtype ", DTypeName(info->dtype), " (F32, F16, BF16 are supported)");
    Pending& p = found[{layer, (int)t}];
    (leaf == "lora_a" ? p.a : p.b) = info;
    min_layer = std::min(min_layer, layer);
    max_layer = std::max(max_layer, layer);
  }

  // The adapted blocks: the last num_layers of the base (as model.layers[-num_layers:]); without a
  // base, the blocks present in the file.
  const int64_t n_layers = base ? base->n_layers : max_layer + 1;
  int64_t first = 0;
  if (num_layers >= 0 && num_layers < n_layers) first = n_layers - num_layers;
  if (!base && num_layers >= 0 && found.size()) first = std::max<int64_t>(first, min_layer);

  LoraAdapter a;
  a.format = AdapterFormat::kMlx;
  a.all_layers = num_layers < 0;
  a.mlx_num_layers = num_layers;
  a.layers.resize(std::max<int64_t>(n_layers, 0));
  for (const auto& [key, p] : found) {
    const auto [layer, ti] = key;
    const LoraTarget t = (LoraTarget)ti;
    const std::string module = "model.layers." + std::to_string(layer) + "." + LoraTargetPath(t);
    if (layer >= n_layers)
      return InvalidFormat(dir, ": tensor `", module, ".lora_a`: the base model has only ", n_layers,
                           " layers (adapter for another base model?)");
    if (layer < first || !keys.count(ti))
      return InvalidFormat(dir, ": tensor `", module, ".lora_a`: module `", module,
                           "` is not adapted by adapter_config.json (num_layers ", num_layers,
                           ", lora_parameters.keys)");
    if (!p.a) return NotFound(dir, ": missing tensor `", module, ".lora_a`");
    if (!p.b) return NotFound(dir, ": missing tensor `", module, ".lora_b`");
    if (p.a->shape[1] != rank || p.b->shape[0] != rank)
      return InvalidFormat(dir, ": ", module, ": lora_a ", p.a->shape.ToString(), " and lora_b ",
                           p.b->shape.ToString(), " do not have rank ", rank,
                           " as lora_parameters.rank says");
    LoraLinear& l = a.layers[layer][ti];
    l.a = ToF32(p.a->data, p.a->dtype, p.a->shape[0], p.a->shape[1], /*transpose=*/true);
    l.b = ToF32(p.b->data, p.b->dtype, p.b->shape[0], p.b->shape[1], /*transpose=*/true);
    l.scale = scale;
    l.file_dtype = p.a->dtype;
    PETREL_TRY(CheckLinearShapes(l, layer, t, base, dir));
  }
  for (int64_t i = first; i < n_layers; ++i)
    for (int t : keys)
      if (!found.count({i, t}))
        return NotFound(dir, ": missing tensor `model.layers.", i, ".", LoraTargetPath((LoraTarget)t),
                        ".lora_a` (num_layers ", num_layers, " adapts blocks ", first, "..", n_layers - 1, ")");
  return a;
}

}  // namespace petrel::model::lora::internal
