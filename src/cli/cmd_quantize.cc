// `petrel quantize IN_DIR -o OUT_DIR --type int8|int4 [--group 64]`: writes a quantized copy of a
// Hugging Face model directory in the MLX affine layout (mlx-lm loads it too): for each quantized
// Linear / Embedding P, `P.weight` holds uint32-packed codes (LSB first), `P.scales` and
// `P.biases` the per-group affine parameters (w = scale * q + bias) in the model's float dtype;
// config.json gains "quantization" (and its "quantization_config" mirror). With --type int4 the
// embedding / lm_head are written at 8 bits through per-module overrides (see model/quantize.h for
// why). Other files of the directory (tokenizer, generation config, templates) are copied.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "core/json_util.h"
#include "formats/safetensors.h"

namespace petrel::cli {

namespace {

namespace fs = std::filesystem;

bool IsQuantizable(const formats::TensorInfo& t) {
  const std::string& n = t.name;
  if (t.shape.rank != 2 || !n.ends_with(".weight")) return false;
  return n.find("_proj.weight") != std::string::npos || n == "model.embed_tokens.weight" ||
         n == "lm_head.weight";
}

bool IsEmbedOrHead(const std::string& n) {
  return n == "model.embed_tokens.weight" || n == "lm_head.weight";
}

// One quantized matrix in MLX layout.
struct MlxTensor {
  std::vector<uint32_t> codes;      // [N, K * bits / 32]
  std::vector<uint16_t> scales, biases;  // [N, K / group] in `dtype`
};

MlxTensor QuantizeMlx(const formats::TensorInfo& t, int bits, int64_t group, DType dtype) {
  const int64_t N = t.shape[0], K = t.shape[1], ng = K / group;
  const int levels = (1 << bits) - 1;
  MlxTensor out;
  out.codes.assign((size_t)(N * K * bits / 32), 0);
  out.scales.resize((size_t)(N * ng));
  out.biases.resize((size_t)(N * ng));
  std::vector<float> row(K);
  const size_t row_bytes = DTypeBytes(t.dtype, K);
  for (int64_t n = 0; n < N; ++n) {
    ConvertToF32(static_cast<const char*>(t.data) + n * row_bytes, t.dtype, row.data(), K);
    uint32_t* words = out.codes.data() + n * (K * bits / 32);
    for (int64_t g = 0; g < ng; ++g) {
      const float* x = row.data() + g * group;
      const auto [lo, hi] = std::minmax_element(x, x + group);
      float scale = (*hi - *lo) / (float)levels, bias = *lo;
      // Stored in the model dtype; the codes are chosen for the stored (rounded) values.
      uint16_t s16, b16;
      ConvertFromF32(&scale, dtype, &s16, 1);
      ConvertFromF32(&bias, dtype, &b16, 1);
      ConvertToF32(&s16, dtype, &scale, 1);
      ConvertToF32(&b16, dtype, &bias, 1);
      out.scales[n * ng + g] = s16;
      out.biases[n * ng + g] = b16;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      for (int64_t i = 0; i < group; ++i) {
        const int64_t e = g * group + i;
        const uint32_t q = (uint32_t)std::clamp(std::nearbyint((x[i] - bias) * inv), 0.0f, (float)levels);
        words[e * bits / 32] |= q << ((e * bits) % 32);
      }
    }
  }
  return out;
}

void Progress(size_t done, size_t total, const std::string& what) {
  const int width = 30;
  const int filled = total ? (int)(width * done / total) : width;
  std::fprintf(stderr, "\r[%.*s%*s] %3d%% %zu/%zu %-48.48s", filled,
               "##############################", width - filled, "", total ? (int)(100 * done / total) : 100,
               done, total, what.c_str());
  std::fflush(stderr);
}

}  // namespace

int RunQuantize(int argc, char** argv) {
  std::string out_dir, type = "int4";
  int64_t group = 64;
  Flags f("petrel quantize IN_DIR -o OUT_DIR --type int8|int4 [--group 32|64|128]");
  f.Add("output", &out_dir, "output model directory (created); also -o")
      .Add("type", &type, "int8 or int4 (default int4)")
      .Add("group", &group, "elements per scale/bias group: 32, 64 (default) or 128");
  // The flag parser knows only --long flags; accept the conventional short -o.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a == "-o" ? const_cast<char*>("--output") : a.data());
  if (auto st = f.Parse(argc, av.data()); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1 || out_dir.empty()) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  if (type != "int8" && type != "int4") return ReportError(InvalidArgument("--type must be int8 or int4"));
  if (group != 32 && group != 64 && group != 128)
    return ReportError(InvalidArgument("--group must be 32, 64 or 128"));
  const int bits = type == "int8" ? 8 : 4;
  const std::string in_dir = f.positional()[0];
  auto cfg = ReadJsonFile(in_dir + "/config.json");
  if (!cfg.ok()) return ReportError(cfg.error());
  if (cfg->contains("quantization"))
    return ReportError(InvalidArgument(in_dir, " is already quantized"));
  auto store = formats::TensorStore::OpenDirectory(in_dir);
  if (!store.ok()) return ReportError(store.error());

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return ReportError(IoError("creating ", out_dir, ": ", ec.message()));

  // Quantize (kept in memory until the single write).
  std::vector<MlxTensor> quantized;
  quantized.reserve(store->all().size());
  std::vector<formats::TensorToWrite> tensors;
  std::vector<std::string> names;  // storage for the .scales / .biases names
  names.reserve(store->all().size() * 2);
  Json overrides = Json::object();
  size_t done = 0;
  const size_t total = store->all().size();
  for (const auto& [name, info] : store->all()) {
    Progress(done++, total, name);
    const bool float_dtype = info->dtype == DType::kF32 || info->dtype == DType::kF16 || info->dtype == DType::kBF16;
    const int b = IsEmbedOrHead(name) ? 8 : bits;
    if (!float_dtype || !IsQuantizable(*info) || info->shape[1] % group != 0 || (info->shape[1] * b) % 32 != 0) {
      tensors.push_back({name, info->dtype, info->shape, info->data});
      continue;
    }
    const DType sdt = info->dtype == DType::kF32 ? DType::kBF16 : info->dtype;  // scales in model dtype
    quantized.push_back(QuantizeMlx(*info, b, group, sdt));
    const MlxTensor& q = quantized.back();
    const std::string prefix = name.substr(0, name.size() - 7);
    const int64_t N = info->shape[0], K = info->shape[1];
    tensors.push_back({name, DType::kU32, Shape{N, K * b / 32}, q.codes.data()});
    names.push_back(prefix + ".scales");
    tensors.push_back({names.back(), sdt, Shape{N, K / group}, q.scales.data()});
    names.push_back(prefix + ".biases");
    tensors.push_back({names.back(), sdt, Shape{N, K / group}, q.biases.data()});
    if (b != bits) overrides[prefix] = Json{{"group_size", group}, {"bits", b}};
  }
  Progress(total, total, "writing model.safetensors");
  if (auto st = formats::WriteSafetensors(out_dir + "/model.safetensors", tensors, {{"format", "mlx"}}); !st.ok())
    return ReportError(st.error());

  Json qcfg = {{"group_size", group}, {"bits", bits}, {"mode", "affine"}};
  for (auto& [k, v] : overrides.items()) qcfg[k] = v;
  Json out_cfg = *cfg;
  out_cfg["quantization"] = qcfg;
  out_cfg["quantization_config"] = qcfg;
  {
    std::ofstream o(out_dir + "/config.json");
    o << DumpJson(out_cfg, 2) << "\n";
    if (!o) return ReportError(IoError("writing ", out_dir, "/config.json"));
  }
  // Everything else that is not weights (tokenizer, generation config, chat template, ...).
  for (const auto& e : fs::directory_iterator(in_dir, ec)) {
    const std::string fn = e.path().filename().string();
    if (!e.is_regular_file() || fn == "config.json" || fn.ends_with(".safetensors") ||
        fn == "model.safetensors.index.json" || fn.ends_with(".bin") || fn.ends_with(".gguf"))
      continue;
    fs::copy_file(e.path(), fs::path(out_dir) / fn, fs::copy_options::overwrite_existing, ec);
    if (ec) return ReportError(IoError("copying ", fn, ": ", ec.message()));
  }
  std::fprintf(stderr, "\nwrote %s (%s, group %lld, %zu matrices quantized)\n", out_dir.c_str(), type.c_str(),
               (long long)group, quantized.size());
  return 0;
}

}  // namespace petrel::cli
