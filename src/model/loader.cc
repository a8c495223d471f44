// LoadModel: config.json + generation_config.json + safetensors, a GGUF file or dummy weights ->
// Model.
#include <algorithm>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstring>

#include "core/json_util.h"
#include "core/log.h"
#include "formats/gguf_model.h"
#include "formats/hf_config.h"
#include "kernels/backend_factory.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/rope.h"

namespace petrel::model {

namespace {

// Fills `t` with uniform noise of standard deviation `std` (xorshift64*; fast enough for the
// 600M parameters of a Qwen3-0.6B shape in about a second).
void FillRandom(Tensor& t, float std_dev, uint64_t seed) {
  const int64_t n = t.NumElements();
  std::vector<float> buf(4096);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  const float a = std_dev * 1.7320508f;  // uniform [-a, a] has this std
  for (int64_t i = 0; i < n; i += (int64_t)buf.size()) {
    const int64_t m = std::min<int64_t>((int64_t)buf.size(), n - i);
    for (int64_t j = 0; j < m; ++j) {
      s ^= s >> 12;
      s ^= s << 25;
      s ^= s >> 27;
      const uint64_t r = s * 0x2545F4914F6CDD1Dull;
      buf[j] = ((float)(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a;
    }
    ConvertFromF32(buf.data(), t.dtype(), static_cast<char*>(t.data()) + i * DTypeSize(t.dtype()), m);
  }
}

bool IsNormWeight(const std::string& name) {
  return name.find("norm.weight") != std::string::npos;
}

// Binds every tensor of a GGUF file: F32/F16/BF16/Q8_0/Q4_0/Q4_1 as zero-copy views (the block
// layouts are the same), other types dequantized to bf16; llama q/k rows un-permuted (copies).
Status BindGgufTensors(const formats::GgufFile& f, const formats::ModelConfig& c, Weights& w,
                       std::vector<Tensor>& owned) {
  Status first_error;
  ForEachTensor(c, w, [&](const TensorSpec& spec, TensorView& slot) {
    if (!first_error.ok()) return;
    const std::string gname = formats::HfToGgufName(spec.name);
    const formats::GgufTensor* t = gname.empty() ? nullptr : f.Find(gname);
    if (!t) {
      if (spec.required) first_error = NotFound(f.name(), ": missing tensor `", gname, "` (", spec.name, ")");
      return;
    }
    if (!(t->shape == spec.shape)) {
      first_error = InvalidFormat(f.name(), ": tensor `", gname, "`: expected shape ", spec.shape.ToString(),
                                  ", got ", t->shape.ToString());
      return;
    }
    const bool permuted = c.architecture == "llama" && (gname.ends_with("attn_q.weight") || gname.ends_with("attn_k.weight"));
    if (t->direct && !permuted) {
      slot = t->view();
      return;
    }
    Tensor copy(t->direct ? t->dtype : DType::kBF16, spec.shape);
    if (t->direct) {
      std::memcpy(copy.data(), t->data, t->nbytes);
    } else {
      std::vector<float> tmp(spec.shape.NumElements());
      if (auto st = formats::DequantizeGguf(t->data, t->type, (int64_t)tmp.size(), tmp.data()); !st.ok()) {
        first_error = st;
        return;
      }
      ConvertFromF32(tmp.data(), DType::kBF16, copy.data(), (int64_t)tmp.size());
    }
    if (permuted) {
      const int64_t heads = gname.ends_with("attn_q.weight") ? c.n_heads : c.n_kv_heads;
      formats::UnpermuteQkRows(copy.data(), heads, c.head_dim, copy.NumBytes() / (size_t)spec.shape[0]);
    }
    owned.push_back(std::move(copy));
    slot = owned.back().view();
  });
  return first_error;
}

}  // namespace

Result<std::unique_ptr<Model>> LoadModel(const std::string& dir, const LoadOptions& opts) {
  PETREL_TRY(const kernels::MatMulPrecision precision, kernels::ParseMatMulPrecision(opts.matmul_precision));
  auto m = std::unique_ptr<Model>(new Model());
  m->dir_ = dir;
  // A .gguf file (llama.cpp) instead of a directory: config from its metadata (gguf_model.h).
  const bool gguf = dir.ends_with(".gguf");
  if (gguf) {
    PETREL_TRY(formats::GgufFile gf, formats::GgufFile::Open(dir));
    m->gguf_ = std::make_unique<formats::GgufFile>(std::move(gf));
    PETREL_TRY(m->config_, formats::ModelConfigFromGguf(*m->gguf_));
  } else {
    PETREL_TRY(m->config_, formats::LoadHfConfig(dir));
    PETREL_TRY(m->generation_config_, formats::LoadGenerationConfig(dir));
  }
  const formats::ModelConfig& c = m->config_;

  if (gguf) {
    PETREL_TRY(BindGgufTensors(*m->gguf_, c, m->w_, m->owned_));
  } else if (opts.load_format == "dummy") {
    uint64_t seed = opts.dummy_seed;
    Status st;
    ForEachTensor(c, m->w_, [&](const TensorSpec& spec, TensorView& slot) {
      Tensor t(c.dtype, spec.shape);
      if (IsNormWeight(spec.name)) {
        std::vector<float> ones(spec.shape.NumElements(), 1.0f);
        ConvertFromF32(ones.data(), c.dtype, t.data(), (int64_t)ones.size());
      } else {
        FillRandom(t, 0.02f, ++seed);
      }
      slot = t.view();
      m->owned_.push_back(std::move(t));
    });
  } else if (opts.load_format == "auto" || opts.load_format == "safetensors") {
    PETREL_TRY(m->store_, formats::TensorStore::OpenDirectory(dir));
    // MLX quantized checkpoints: "quantization" in config.json (quantize.h converts them).
    PETREL_TRY(Json cfg_json, ReadJsonFile(dir + "/config.json"));
    const bool mlx_quant = cfg_json.is_object() && cfg_json.contains("quantization");
    int64_t mlx_inexact = 0;
    Status first_error;
    ForEachTensor(c, m->w_, [&](const TensorSpec& spec, TensorView& slot) {
      if (!first_error.ok()) return;
      if (mlx_quant && spec.shape.rank == 2 && spec.name.ends_with(".weight")) {
        const std::string prefix = spec.name.substr(0, spec.name.size() - 7);
        if (m->store_.Find(prefix + ".scales")) {
          bool quantized = false;
          int bits = 0;
          int64_t group = 0;
          if (auto st = MlxModuleQuantization(cfg_json["quantization"], prefix, &quantized, &bits, &group);
              !st.ok()) {
            first_error = st.error();
            return;
          }
          if (quantized) {
            auto t = ConvertMlxQuantized(m->store_, prefix, spec.shape, bits, group, &mlx_inexact);
            if (!t.ok()) {
              first_error = t.error().WithContext(dir);
              return;
            }
            m->owned_.push_back(std::move(*t));
            slot = m->owned_.back().view();
            return;
          }
        }
      }
      const formats::TensorInfo* t = m->store_.Find(spec.name);
      if (!t) {
        if (spec.required) first_error = NotFound(dir, ": missing tensor `", spec.name, "`");
        return;
      }
      if (!(t->shape == spec.shape)) {
        first_error = InvalidFormat(t->file, ": tensor `", spec.name, "`: expected shape ",
                                    spec.shape.ToString(), ", got ", t->shape.ToString());
        return;
      }
      if (t->dtype != DType::kF32 && t->dtype != DType::kF16 && t->dtype != DType::kBF16) {
        first_error = Unsupported(t->file, ": tensor `", spec.name, "` has dtype ",
                                  DTypeName(t->dtype), " (F32, F16, BF16 are supported)");
        return;
      }
      slot = t->view();
    });
    if (!first_error.ok()) return first_error.error();
    if (mlx_inexact > 0)
      LogWarn(dir, ": ", mlx_inexact, " MLX scales/biases are not exact in f16 (rounded to nearest)");
  } else {
    return InvalidArgument("unknown --load-format \"", opts.load_format, "\" (auto, safetensors, dummy)");
  }
  if (c.tie_embeddings) m->w_.lm_head = m->w_.embed;
  // Quantization at load (--quant): Linear weights, embedding and lm_head into block types.
  PETREL_TRY(QuantSpec qspec, ParseQuantSpec(opts.quant));
  QuantizeWeights(c, qspec, m->w_, m->owned_, opts.n_threads);
  bool any_quantized = false;
  ForEachTensor(c, m->w_, [&](const TensorSpec&, TensorView& slot) { any_quantized |= IsBlockQuantized(slot.dtype); });
  if (any_quantized && opts.device != "cpu")
    return Unsupported("quantized weights run on the CPU backend only (--device ", opts.device, ")");

  int64_t bytes = 0;
  Weights& w = m->w_;
  ForEachTensor(c, w, [&](const TensorSpec&, TensorView& slot) { bytes += (int64_t)slot.NumBytes(); });
  m->weight_bytes_ = bytes;
  m->rope_ = BuildRopeTable(c);
  PETREL_TRY(m->backend_, kernels::CreateBackend(opts.device, opts.n_threads, precision));
  if (opts.op_profile) m->backend_ = kernels::WithOpProfile(std::move(m->backend_), &m->op_profile_);
  // Each weight goes to the backend's memory once (device memory for CUDA; the CPU keeps views, or
  // its packed copies of the block-quantized ones).
  ForEachTensor(c, w, [&](const TensorSpec&, TensorView& slot) { slot = m->backend_->UploadWeight(slot); });
  if (c.tie_embeddings) w.lm_head = w.embed;
  // Generated or converted host tensors that no weight views any more - replaced by the backend's
  // copy (a device upload, the CPU's packed weights) or by their quantized form - are freed: a
  // 4-bit model must not keep its plain (or bf16) copy beside the one that runs.
  // Mapped file pages that no weight views any more leave the process's memory too (the file
  // stays mapped; a read would fault them back in).
  std::vector<const char*> in_use;
  ForEachTensor(c, w, [&](const TensorSpec&, TensorView& slot) {
    in_use.push_back(static_cast<const char*>(slot.data));
  });
  auto viewed = [&](const void* data, size_t n) {
    const char* b = static_cast<const char*>(data);
    return std::any_of(in_use.begin(), in_use.end(),
                       [&](const char* p) { return p >= b && p < b + n; });
  };
  std::erase_if(m->owned_, [&](const Tensor& t) { return !viewed(t.data(), t.NumBytes()); });
#if defined(__GLIBC__)
  malloc_trim(0);  // weights of a few MB come from the heap: give the freed ones back to the OS
#endif
  for (const auto& [name, t] : m->store_.all())
    if (!viewed(t->data, t->nbytes)) m->store_.DropPages(t->data, t->nbytes);
  if (m->gguf_)
    for (const formats::GgufTensor& t : m->gguf_->tensors())
      if (!viewed(t.data, t.nbytes)) m->gguf_->mapping().DropPages(t.data, t.nbytes);
  return m;
}

}  // namespace petrel::model
