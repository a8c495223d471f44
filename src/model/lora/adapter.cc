// Shared parts of the adapter loader: target names and shapes, format detection, shape checks,
// combining several adapters into one.
#include "model/lora/adapter.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/json_util.h"
#include "core/mmap_file.h"

namespace petrel::model::lora {

const char* LoraTargetLeaf(LoraTarget t) {
  switch (t) {
    case LoraTarget::kQ: return "q_proj";
    case LoraTarget::kK: return "k_proj";
    case LoraTarget::kV: return "v_proj";
    case LoraTarget::kO: return "o_proj";
    case LoraTarget::kGate: return "gate_proj";
    case LoraTarget::kUp: return "up_proj";
    case LoraTarget::kDown: return "down_proj";
  }
  return "?";
}

const char* LoraTargetPath(LoraTarget t) {
  switch (t) {
    case LoraTarget::kQ: return "self_attn.q_proj";
    case LoraTarget::kK: return "self_attn.k_proj";
    case LoraTarget::kV: return "self_attn.v_proj";
    case LoraTarget::kO: return "self_attn.o_proj";
    case LoraTarget::kGate: return "mlp.gate_proj";
    case LoraTarget::kUp: return "mlp.up_proj";
    case LoraTarget::kDown: return "mlp.down_proj";
  }
  return "?";
}

std::array<int64_t, 2> LoraTargetShape(const formats::ModelConfig& c, LoraTarget t) {
  const int64_t d = c.d_model, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  switch (t) {
    case LoraTarget::kQ: return {q, d};
    case LoraTarget::kK: return {kv, d};
    case LoraTarget::kV: return {kv, d};
    case LoraTarget::kO: return {d, q};
    case LoraTarget::kGate: return {c.ffn_dim, d};
    case LoraTarget::kUp: return {c.ffn_dim, d};
    case LoraTarget::kDown: return {d, c.ffn_dim};
  }
  return {0, 0};
}

const char* AdapterFormatName(AdapterFormat f) {
  switch (f) {
    case AdapterFormat::kPeft: return "peft";
    case AdapterFormat::kMlx: return "mlx";
  }
  return "?";
}

int64_t LoraAdapter::MaxRank() const {
  int64_t r = 0;
  for (const auto& layer : layers)
    for (const auto& l : layer)
      if (l.present()) r = std::max(r, l.rank());
  return r;
}

int64_t LoraAdapter::NumLinears() const {
  int64_t n = 0;
  for (const auto& layer : layers)
    for (const auto& l : layer) n += l.present();
  return n;
}

int64_t LoraAdapter::NumBytes() const {
  int64_t n = 0;
  for (const auto& layer : layers)
    for (const auto& l : layer)
      if (l.present()) n += (int64_t)(l.a.NumBytes() + l.b.NumBytes());
  return n;
}

namespace internal {

Tensor ToF32(const void* data, DType dtype, int64_t rows, int64_t cols, bool transpose) {
  Tensor src(DType::kF32, Shape{rows, cols});
  ConvertToF32(data, dtype, src.As<float>(), rows * cols);
  if (!transpose) return src;
  Tensor t(DType::kF32, Shape{cols, rows});
  const float* s = src.As<float>();
  float* d = t.As<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) d[c * rows + r] = s[r * cols + c];
  return t;
}

std::string JsonString(const Json& j, const char* key, const std::string& dflt) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return dflt;
  return j[key].get<std::string>();
}

bool JsonBool(const Json& j, const char* key, bool dflt) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_boolean()) return dflt;
  return j[key].get<bool>();
}

Status CheckLinearShapes(const LoraLinear& l, int64_t layer, LoraTarget t,
                         const formats::ModelConfig* base, const std::string& what) {
  const std::string module = "model.layers." + std::to_string(layer) + "." + LoraTargetPath(t);
  if (l.b.shape()[1] != l.rank()) {
    return InvalidFormat(what, ": ", module, ": lora_A has rank ", l.rank(), " but lora_B has rank ",
                         l.b.shape()[1], " (A ", l.a.shape().ToString(), ", B ",
                         l.b.shape().ToString(), " in the internal [r, in] / [out, r] layout)");
  }
  if (l.rank() < 1) return InvalidFormat(what, ": ", module, ": rank 0");
  if (!base) return OkStatus();
  if (layer >= base->n_layers) {
    return InvalidFormat(what, ": ", module, " does not exist: the base model has ", base->n_layers,
                         " layers (adapter for another base model?)");
  }
  const auto [out, in] = LoraTargetShape(*base, t);
  if (l.in_features() != in || l.out_features() != out) {
    return InvalidFormat(what, ": ", module, ": the adapter maps ", l.in_features(), " -> ",
                         l.out_features(), " features but the base model's ", LoraTargetLeaf(t),
                         " is ", in, " -> ", out, " (hidden_size ", base->d_model,
                         ", intermediate_size ", base->ffn_dim,
                         "): this adapter was trained for another base model");
  }
  return OkStatus();
}

bool ParseModule(const std::string& module, int64_t* layer, LoraTarget* target) {
  static constexpr std::string_view kLayers = "model.layers.";
  if (module.rfind(kLayers, 0) != 0) return false;
  size_t p = kLayers.size(), q = p;
  while (q < module.size() && std::isdigit((unsigned char)module[q])) ++q;
  if (q == p || q - p > 6 || q >= module.size() || module[q] != '.') return false;
  const std::string rest = module.substr(q + 1);
  for (LoraTarget t : kAllLoraTargets)
    if (rest == LoraTargetPath(t)) {
      *layer = std::stoll(module.substr(p, q - p));
      *target = t;
      return true;
    }
  return false;
}

}  // namespace internal

Result<LoraAdapter> ReadAdapter(const std::string& dir, const formats::ModelConfig* base) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) return NotFound("LoRA adapter directory \"", dir, "\" does not exist");
  const std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
  if (!FileExists(cfg_path)) return NotFound(dir, ": no adapter_config.json (PEFT or MLX-LM adapter expected)");
  PETREL_TRY(Json cfg, ReadJsonFile(cfg_path));
  if (!cfg.is_object()) return InvalidFormat(cfg_path, ": not a JSON object");
  // PEFT always writes peft_type; MLX-LM writes its training arguments (lora_parameters,
  // fine_tune_type, num_layers). Fall back to the tensor file's name.
  // The parsers check types before every access; the catch is a last line of defence so that a
  // JSON library exception never crosses the module boundary.
  Result<LoraAdapter> r = [&]() -> Result<LoraAdapter> {
    try {
      if (cfg.contains("peft_type")) return internal::ReadPeft(dir, base);
      if (cfg.contains("lora_parameters") || cfg.contains("fine_tune_type"))
        return internal::ReadMlx(dir, base);
      if (FileExists((fs::path(dir) / "adapter_model.safetensors").string()))
        return internal::ReadPeft(dir, base);
      if (FileExists((fs::path(dir) / "adapters.safetensors").string()))
        return internal::ReadMlx(dir, base);
    } catch (const std::exception& e) {
      return InvalidFormat(cfg_path, ": ", e.what());
    }
    return InvalidFormat(cfg_path, ": neither a PEFT config (peft_type) nor an MLX-LM config (lora_parameters)");
  }();
  if (!r.ok()) return r.error();
  LoraAdapter& a = *r;
  a.path = dir;
  if (a.NumLinears() == 0) return InvalidFormat(dir, ": the adapter has no LoRA tensors");
  if (base) {
    a.base_n_layers = base->n_layers;
    a.layers.resize(base->n_layers);
  }
  return r;
}

Result<std::shared_ptr<const LoraAdapter>> LoadAdapter(const std::string& dir,
                                                       const formats::ModelConfig& base) {
  PETREL_TRY(LoraAdapter a, ReadAdapter(dir, &base));
  for (auto& layer : a.layers)
    for (auto& l : layer) {
      if (!l.present() || l.scale == 1.0f) continue;
      float* b = l.b.As<float>();
      for (int64_t i = 0; i < l.b.NumElements(); ++i) b[i] *= l.scale;
      l.scale = 1.0f;
    }
  return std::shared_ptr<const LoraAdapter>(std::make_shared<LoraAdapter>(std::move(a)));
}

Result<std::shared_ptr<const LoraAdapter>> CombineAdapters(
    const std::vector<std::shared_ptr<const LoraAdapter>>& adapters) {
  if (adapters.empty()) return InvalidArgument("no adapters to combine");
  if (adapters.size() == 1) return adapters[0];
  auto out = std::make_shared<LoraAdapter>();
  out->format = adapters[0]->format;
  out->base_n_layers = adapters[0]->base_n_layers;
  for (const auto& a : adapters) {
    if (a->base_n_layers != out->base_n_layers || a->base_n_layers == 0)
      return InvalidArgument("adapters combined must be validated against the same base model");
    out->path += (out->path.empty() ? "" : "+") + a->path;
  }
  out->layers.resize(out->base_n_layers);
  for (int64_t i = 0; i < out->base_n_layers; ++i) {
    for (LoraTarget t : kAllLoraTargets) {
      int64_t rank = 0, in = 0, outf = 0;
      for (const auto& a : adapters)
        if (const LoraLinear* l = a->Find(i, t)) {
          rank += l->rank();
          in = l->in_features();
          outf = l->out_features();
        }
      if (rank == 0) continue;
      LoraLinear& c = out->layers[i][(int)t];
      c.a = Tensor(DType::kF32, Shape{rank, in});
      c.b = Tensor(DType::kF32, Shape{outf, rank});
      c.scale = 1.0f;
      int64_t r0 = 0;
      for (const auto& a : adapters) {
        const LoraLinear* l = a->Find(i, t);
        if (!l) continue;
        const int64_t r = l->rank();
        std::memcpy(c.a.As<float>() + r0 * in, l->a.As<float>(), (size_t)(r * in) * sizeof(float));
        for (int64_t o = 0; o < outf; ++o)
          for (int64_t k = 0; k < r; ++k)
            c.b.As<float>()[o * rank + r0 + k] = l->scale * l->b.As<float>()[o * r + k];
        r0 += r;
      }
    }
  }
  return std::shared_ptr<const LoraAdapter>(std::move(out));
}

}  // namespace petrel::model::lora
