#include "model/lora/merge.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/json_util.h"
#include "core/mmap_file.h"
#include "core/thread_pool.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"

namespace petrel::model::lora {

namespace {

namespace fs = std::filesystem;

// Files save_pretrained / tokenizer.save_pretrained put next to the weights, copied as they are.
constexpr const char* kCopiedFiles[] = {
    "generation_config.json", "tokenizer.json",  "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json",      "vocab.json",      "merges.txt",            "tokenizer.model",
    "chat_template.jinja",    "chat_template.json", "preprocessor_config.json"};

Status CopyFile(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return IoError("copying ", from, " to ", to, ": ", ec.message());
  return OkStatus();
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return IoError("cannot write ", path);
  f << text;
  if (!f.good()) return IoError("error writing ", path);
  return OkStatus();
}

const char* TorchDTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    default: return "float32";
  }
}

// "model.layers.{i}.{path}.weight" -> (layer, target).
bool ParseWeightName(const std::string& name, int64_t* layer, LoraTarget* t) {
  static constexpr std::string_view kLayers = "model.layers.";
  static constexpr std::string_view kWeight = ".weight";
  if (name.rfind(kLayers, 0) != 0 || name.size() < kLayers.size() + kWeight.size() ||
      name.compare(name.size() - kWeight.size(), kWeight.size(), kWeight) != 0)
    return false;
  size_t p = kLayers.size(), q = p;
  while (q < name.size() && std::isdigit((unsigned char)name[q])) ++q;
  if (q == p || q >= name.size() || name[q] != '.') return false;
  const std::string mid = name.substr(q + 1, name.size() - kWeight.size() - q - 1);
  for (LoraTarget x : kAllLoraTargets)
    if (mid == LoraTargetPath(x)) {
      *layer = std::stoll(name.substr(p, q - p));
      *t = x;
      return true;
    }
  return false;
}

// delta[i] = fma(b, a[i], delta[i]) for i < n. Fused multiply-adds in ascending k, as the f32 GEMM
// PyTorch runs for (B @ A) does on x86: with them our merged bf16 tensors are bit-identical to
// merge_and_unload()'s (separate multiply + add leaves ~1 in 20,000 elements one ulp off). The
// FMA-ISA version is chosen at run time; the portable one calls std::fma (exact, slower).
__attribute__((target("avx2,fma"))) void AxpyFmaIsa(float* delta, const float* a, float b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) delta[i] = __builtin_fmaf(b, a[i], delta[i]);
}
void AxpyFmaPortable(float* delta, const float* a, float b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) delta[i] = std::fma(b, a[i], delta[i]);
}

}  // namespace

void MergeLinear(const void* w, DType w_dtype, const LoraLinear& l, DType out_dtype, void* out,
                 int n_threads) {
  const int64_t n_out = l.out_features(), n_in = l.in_features(), r = l.rank();
  const float* A = l.a.As<float>();  // [r, in]
  const float* B = l.b.As<float>();  // [out, r]
  const size_t in_esz = DTypeSize(w_dtype), out_esz = DTypeSize(out_dtype);
  const auto axpy = __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2") ? AxpyFmaIsa : AxpyFmaPortable;
  ThreadPool pool(n_threads > 0 ? n_threads : ThreadPool::HardwareThreads());
  pool.ParallelFor(n_out, 8, [&](int64_t b, int64_t e, int) {
    std::vector<float> row(n_in), delta(n_in);
    for (int64_t o = b; o < e; ++o) {
      // delta = (B @ A)[o, :] in f32, then times scale (PEFT: (B @ A) * scaling).
      std::fill(delta.begin(), delta.end(), 0.0f);
      for (int64_t k = 0; k < r; ++k) axpy(delta.data(), A + k * n_in, B[o * r + k], n_in);
      ConvertToF32(static_cast<const char*>(w) + (size_t)(o * n_in) * in_esz, w_dtype, row.data(), n_in);
      for (int64_t i = 0; i < n_in; ++i) row[i] += delta[i] * l.scale;
      ConvertFromF32(row.data(), out_dtype, static_cast<char*>(out) + (size_t)(o * n_in) * out_esz, n_in);
    }
  });
}

Result<int64_t> ParseByteSize(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit((unsigned char)s[i]) || s[i] == '.')) ++i;
  if (i == 0) return InvalidArgument("bad size \"", s, "\" (e.g. 5GB, 500MB)");
  double v;
  try {
    v = std::stod(s.substr(0, i));
  } catch (...) {
    return InvalidArgument("bad size \"", s, "\"");
  }
  std::string unit = s.substr(i);
  for (auto& c : unit) c = (char)std::toupper((unsigned char)c);
  static const std::map<std::string, double> kUnits = {
      {"", 1},        {"B", 1},       {"KB", 1e3},           {"MB", 1e6},
      {"GB", 1e9},    {"TB", 1e12},   {"KIB", 1024.0},       {"MIB", 1048576.0},
      {"GIB", 1073741824.0}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) return InvalidArgument("bad size unit in \"", s, "\" (B, KB, MB, GB, KiB, MiB, GiB)");
  const int64_t n = (int64_t)(v * it->second);
  if (n < 1) return InvalidArgument("size \"", s, "\" must be positive");
  return n;
}

Status MergeAdapter(const std::string& base_dir, const std::string& adapter_dir,
                    const std::string& out_dir, const MergeOptions& opts) {
  std::error_code ec;
  if (fs::exists(out_dir) && fs::equivalent(out_dir, base_dir, ec))
    return InvalidArgument("the output directory must not be the base model directory");
  PETREL_TRY(formats::ModelConfig config, formats::LoadHfConfig(base_dir));
  PETREL_TRY(LoraAdapter adapter, ReadAdapter(adapter_dir, &config));
  PETREL_TRY(formats::TensorStore store, formats::TensorStore::OpenDirectory(base_dir));
  if (opts.dtype && *opts.dtype != DType::kF32 && *opts.dtype != DType::kF16 && *opts.dtype != DType::kBF16)
    return InvalidArgument("--dtype must be f32, f16 or bf16");

  // Every adapted linear must be in the base (ReadAdapter checked the shapes against config.json;
  // the files must agree with it too).
  for (int64_t i = 0; i < config.n_layers; ++i)
    for (LoraTarget t : kAllLoraTargets)
      if (const LoraLinear* l = adapter.Find(i, t)) {
        const std::string name = "model.layers." + std::to_string(i) + "." + LoraTargetPath(t) + ".weight";
        const formats::TensorInfo* w = store.Find(name);
        if (!w) return NotFound(base_dir, ": missing tensor `", name, "`");
        if (!(w->shape == Shape{l->out_features(), l->in_features()}))
          return InvalidFormat(base_dir, ": tensor `", name, "` is ", w->shape.ToString(), ", the adapter expects [",
                               l->out_features(), ", ", l->in_features(), "]");
      }

  // Plan the shards: tensors in name order, a new shard when the next tensor would overflow.
  struct Planned {
    const formats::TensorInfo* info;
    DType dtype;
    int64_t bytes;
    int shard;
  };
  std::vector<Planned> plan;
  int64_t total = 0, in_shard = 0;
  int shard = 0;
  for (const auto& [name, info] : store.all()) {
    const bool is_float = info->dtype == DType::kF32 || info->dtype == DType::kF16 || info->dtype == DType::kBF16;
    const DType dt = (opts.dtype && is_float) ? *opts.dtype : info->dtype;
    const int64_t bytes = info->shape.NumElements() * (int64_t)DTypeSize(dt);
    if (in_shard > 0 && in_shard + bytes > opts.max_shard_bytes) {
      ++shard;
      in_shard = 0;
    }
    in_shard += bytes;
    total += bytes;
    plan.push_back({info, dt, bytes, shard});
  }
  const int n_shards = shard + 1;
  fs::create_directories(out_dir, ec);
  if (ec) return IoError("cannot create ", out_dir, ": ", ec.message());
  auto shard_name = [&](int s) {
    if (n_shards == 1) return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof(buf), "model-%05d-of-%05d.safetensors", s + 1, n_shards);
    return std::string(buf);
  };

  int64_t done = 0;
  OrderedJson weight_map = OrderedJson::object();
  for (int s = 0; s < n_shards; ++s) {
    std::vector<Tensor> owned;
    std::vector<formats::TensorToWrite> to_write;
    for (const Planned& p : plan) {
      if (p.shard != s) continue;
      const formats::TensorInfo& info = *p.info;
      int64_t layer = 0;
      LoraTarget t = LoraTarget::kQ;
      const LoraLinear* l = ParseWeightName(info.name, &layer, &t) ? adapter.Find(layer, t) : nullptr;
      if (l) {
        Tensor out(p.dtype, info.shape);
        MergeLinear(info.data, info.dtype, *l, p.dtype, out.data(), opts.n_threads);
        to_write.push_back({info.name, p.dtype, info.shape, out.data()});
        owned.push_back(std::move(out));
      } else if (p.dtype == info.dtype) {
        to_write.push_back({info.name, info.dtype, info.shape, info.data});  // zero-copy
      } else {
        Tensor out(p.dtype, info.shape);
        Tensor f32(DType::kF32, info.shape);
        ConvertToF32(info.data, info.dtype, f32.As<float>(), info.shape.NumElements());
        ConvertFromF32(f32.As<float>(), p.dtype, out.data(), info.shape.NumElements());
        to_write.push_back({info.name, p.dtype, info.shape, out.data()});
        owned.push_back(std::move(out));
      }
      weight_map[info.name] = shard_name(s);
      done += p.bytes;
      if (opts.progress) opts.progress(done, total);
    }
    PETREL_TRY(formats::WriteSafetensors((fs::path(out_dir) / shard_name(s)).string(), to_write,
                                         {{"format", "pt"}}));
  }
  if (n_shards > 1) {
    OrderedJson index = OrderedJson::object();
    index["metadata"] = OrderedJson{{"total_size", total}};
    index["weight_map"] = weight_map;
    PETREL_TRY(WriteText((fs::path(out_dir) / "model.safetensors.index.json").string(), DumpJson(index, 2) + "\n"));
  } else {
    fs::remove(fs::path(out_dir) / "model.safetensors.index.json", ec);
  }

  // config.json as the base wrote it, with the dtype updated when it changed.
  PETREL_TRY(std::string cfg_text, ReadFile((fs::path(base_dir) / "config.json").string()));
  PETREL_TRY(OrderedJson cfg, ParseOrderedJson(cfg_text, "config.json"));
  if (opts.dtype) {
    if (cfg.contains("torch_dtype") || !cfg.contains("dtype")) cfg["torch_dtype"] = TorchDTypeName(*opts.dtype);
    if (cfg.contains("dtype")) cfg["dtype"] = TorchDTypeName(*opts.dtype);
  }
  PETREL_TRY(WriteText((fs::path(out_dir) / "config.json").string(), DumpJson(cfg, 2) + "\n"));
  for (const char* f : kCopiedFiles) {
    const fs::path from = fs::path(base_dir) / f;
    if (fs::exists(from)) PETREL_TRY(CopyFile(from.string(), (fs::path(out_dir) / f).string()));
  }
  return OkStatus();
}

}  // namespace petrel::model::lora
