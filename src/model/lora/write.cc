// Writing the internal form back out as a PEFT or an MLX-LM adapter directory (convert-adapter).
// Tensors go back in the dtype they were read in (f32 -> bf16/f16 is exact for values that came
// from bf16/f16), and A/B are transposed for MLX, so conversions are lossless. Scales are written
// so that reading them back gives the same f32 scale: PEFT lora_alpha = scale · r (exact in double).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/json_util.h"
#include "formats/safetensors.h"
#include "model/lora/adapter.h"

namespace petrel::model::lora {

namespace {

struct Entry {
  int64_t layer;
  LoraTarget t;
  const LoraLinear* l;
};

std::vector<Entry> Entries(const LoraAdapter& a) {
  std::vector<Entry> e;
  for (int64_t i = 0; i < (int64_t)a.layers.size(); ++i)
    for (LoraTarget t : kAllLoraTargets)
      if (const LoraLinear* l = a.Find(i, t)) e.push_back({i, t, l});
  return e;
}

std::string ModuleName(int64_t layer, LoraTarget t) {
  return "model.layers." + std::to_string(layer) + "." + LoraTargetPath(t);
}

std::string RegexEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '.') o += '\\';
    o += c;
  }
  return o;
}

// One tensor to write, converted from f32 back to its file dtype (optionally transposed).
struct OwnedTensor {
  std::string name;
  Tensor t;
};
OwnedTensor Export(const std::string& name, const Tensor& src, DType dtype, bool transpose) {
  const int64_t rows = src.shape()[0], cols = src.shape()[1];
  Tensor f32t = internal::ToF32(src.data(), DType::kF32, rows, cols, transpose);
  Tensor out(dtype, f32t.shape());
  ConvertFromF32(f32t.As<float>(), dtype, out.data(), f32t.NumElements());
  return OwnedTensor{name, std::move(out)};
}

Status WriteTensors(const std::string& path, const std::vector<OwnedTensor>& ts, const char* format) {
  std::vector<formats::TensorToWrite> w;
  for (const auto& t : ts) w.push_back({t.name, t.t.dtype(), t.t.shape(), t.t.data()});
  return formats::WriteSafetensors(path, w, {{"format", format}});
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return IoError("cannot write ", path);
  f << text;
  if (!f.good()) return IoError("error writing ", path);
  return OkStatus();
}

Status PrepareDir(const std::string& out_dir, const LoraAdapter& a) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out_dir) && !a.path.empty() && fs::equivalent(out_dir, a.path, ec))
    return InvalidArgument("the output directory is the input adapter directory");
  fs::create_directories(out_dir, ec);
  if (ec) return IoError("cannot create ", out_dir, ": ", ec.message());
  if (a.NumLinears() == 0) return InvalidArgument("the adapter has no LoRA tensors");
  return OkStatus();
}

}  // namespace

Status WritePeftAdapter(const LoraAdapter& a, const std::string& out_dir) {
  PETREL_TRY(PrepareDir(out_dir, a));
  const auto entries = Entries(a);
  // Most common rank, then the most common alpha among modules of that rank, as the defaults;
  // every other module gets rank_pattern / alpha_pattern entries keyed by its escaped full name.
  std::map<int64_t, int> rank_count;
  for (const auto& e : entries) rank_count[e.l->rank()]++;
  const int64_t r = std::max_element(rank_count.begin(), rank_count.end(),
                                     [](auto& x, auto& y) { return x.second < y.second; })->first;
  std::map<double, int> alpha_count;
  for (const auto& e : entries)
    if (e.l->rank() == r) alpha_count[(double)e.l->scale * (double)r]++;
  const double alpha = std::max_element(alpha_count.begin(), alpha_count.end(),
                                        [](auto& x, auto& y) { return x.second < y.second; })->first;
  OrderedJson rank_pattern = OrderedJson::object(), alpha_pattern = OrderedJson::object();
  for (const auto& e : entries) {
    const std::string key = RegexEscape(ModuleName(e.layer, e.t));
    const int64_t rk = e.l->rank();
    if (rk != r) rank_pattern[key] = rk;
    const double al = (double)e.l->scale * (double)rk;
    if (al != alpha) alpha_pattern[key] = al;
  }
  // Targets: leaf names plus layers_to_transform when every adapted layer has the same set;
  // otherwise a regex that names each module.
  std::map<int64_t, std::set<int>> per_layer;
  for (const auto& e : entries) per_layer[e.layer].insert((int)e.t);
  bool uniform = true;
  for (const auto& [layer, set] : per_layer) uniform = uniform && set == per_layer.begin()->second;
  OrderedJson target_modules, layers_to_transform;
  if (uniform) {
    target_modules = OrderedJson::array();
    for (int t : per_layer.begin()->second) target_modules.push_back(LoraTargetLeaf((LoraTarget)t));
    const bool all = a.all_layers &&
                     (a.base_n_layers == 0 || (int64_t)per_layer.size() == a.base_n_layers);
    if (!all) {
      layers_to_transform = OrderedJson::array();
      for (const auto& [layer, set] : per_layer) layers_to_transform.push_back(layer);
    }
  } else {
    std::string re = "(";
    for (size_t i = 0; i < entries.size(); ++i)
      re += (i ? "|" : "") + RegexEscape(ModuleName(entries[i].layer, entries[i].t));
    target_modules = re + ")";
  }
  OrderedJson cfg = OrderedJson::object();
  cfg["alpha_pattern"] = alpha_pattern;
  cfg["base_model_name_or_path"] = a.base_model_name.empty() ? OrderedJson() : OrderedJson(a.base_model_name);
  cfg["bias"] = "none";
  cfg["exclude_modules"] = nullptr;
  cfg["fan_in_fan_out"] = false;
  cfg["inference_mode"] = true;
  cfg["init_lora_weights"] = true;
  cfg["layers_pattern"] = nullptr;
  cfg["layers_to_transform"] = layers_to_transform;
  cfg["lora_alpha"] = alpha;
  cfg["lora_bias"] = false;
  cfg["lora_dropout"] = 0.0;
  cfg["modules_to_save"] = nullptr;
  cfg["peft_type"] = "LORA";
  cfg["r"] = r;
  cfg["rank_pattern"] = rank_pattern;
  cfg["target_modules"] = target_modules;
  cfg["task_type"] = "CAUSAL_LM";
  cfg["use_dora"] = false;
  cfg["use_rslora"] = false;

  std::vector<OwnedTensor> ts;
  for (const auto& e : entries) {
    const std::string p = "base_model.model." + ModuleName(e.layer, e.t);
    ts.push_back(Export(p + ".lora_A.weight", e.l->a, e.l->file_dtype, false));
    ts.push_back(Export(p + ".lora_B.weight", e.l->b, e.l->file_dtype, false));
  }
  namespace fs = std::filesystem;
  PETREL_TRY(WriteTensors((fs::path(out_dir) / "adapter_model.safetensors").string(), ts, "pt"));
  return WriteText((fs::path(out_dir) / "adapter_config.json").string(), DumpJson(cfg, 2) + "\n");
}

Status WriteMlxAdapter(const LoraAdapter& a, const std::string& out_dir, int64_t base_n_layers) {
  const auto entries = Entries(a);
  if (entries.empty()) return InvalidArgument("the adapter has no LoRA tensors");
  const int64_t rank = entries[0].l->rank();
  const float scale = entries[0].l->scale;
  std::map<int64_t, std::set<int>> per_layer;
  for (const auto& e : entries) {
    if (e.l->rank() != rank)
      return Unsupported("MLX adapters have a single lora_parameters.rank, but ", ModuleName(e.layer, e.t),
                         " has rank ", e.l->rank(), " and ", ModuleName(entries[0].layer, entries[0].t),
                         " rank ", rank, " (rank_pattern)");
    if (e.l->scale != scale)
      return Unsupported("MLX adapters have a single lora_parameters.scale, but ", ModuleName(e.layer, e.t),
                         " has scale ", e.l->scale, " and ", ModuleName(entries[0].layer, entries[0].t),
                         " scale ", scale, " (alpha_pattern / rank_pattern)");
    per_layer[e.layer].insert((int)e.t);
  }
  for (const auto& [layer, set] : per_layer)
    if (set != per_layer.begin()->second)
      return Unsupported("MLX adapters adapt the same modules in every block (lora_parameters.keys), "
                         "but layer ", layer, " differs from layer ", per_layer.begin()->first);
  const int64_t first = per_layer.begin()->first, last = per_layer.rbegin()->first;
  if (last - first + 1 != (int64_t)per_layer.size())
    return Unsupported("MLX adapters adapt a run of last blocks (num_layers), but the adapted layers "
                       "of this adapter are not contiguous");
  // num_layers: all blocks, the MLX source's own value, or counted back from the base's last block.
  int64_t num_layers;
  const int64_t n = base_n_layers > 0 ? base_n_layers : a.base_n_layers;
  if (a.mlx_num_layers != 0) {
    num_layers = a.mlx_num_layers;
  } else if (a.all_layers && first == 0 && (n == 0 || last == n - 1)) {
    num_layers = -1;
  } else if (n > 0) {
    if (last != n - 1)
      return Unsupported("MLX adapters adapt the LAST num_layers blocks, but this adapter's layers are ",
                         first, "..", last, " of ", n);
    num_layers = last - first + 1;
  } else {
    return InvalidArgument("the adapter adapts layers ", first, "..", last,
                           " (layers_to_transform); MLX counts blocks from the end, so the base "
                           "model's layer count is needed (--base MODEL_DIR)");
  }
  PETREL_TRY(PrepareDir(out_dir, a));
  OrderedJson keys = OrderedJson::array();
  for (int t : per_layer.begin()->second) keys.push_back(LoraTargetPath((LoraTarget)t));
  OrderedJson lp = OrderedJson::object();
  lp["rank"] = rank;
  lp["scale"] = (double)scale;
  lp["dropout"] = 0.0;
  lp["keys"] = keys;
  OrderedJson cfg = OrderedJson::object();
  cfg["fine_tune_type"] = "lora";
  cfg["num_layers"] = num_layers;
  cfg["lora_parameters"] = lp;

  std::vector<OwnedTensor> ts;
  for (const auto& e : entries) {
    const std::string p = ModuleName(e.layer, e.t);
    ts.push_back(Export(p + ".lora_a", e.l->a, e.l->file_dtype, /*transpose=*/true));
    ts.push_back(Export(p + ".lora_b", e.l->b, e.l->file_dtype, /*transpose=*/true));
  }
  namespace fs = std::filesystem;
  PETREL_TRY(WriteTensors((fs::path(out_dir) / "adapters.safetensors").string(), ts, "mlx"));
  return WriteText((fs::path(out_dir) / "adapter_config.json").string(), DumpJson(cfg, 2) + "\n");
}

}  // namespace petrel::model::lora
