// `petrel convert IN_DIR --to gguf -o OUT.gguf [--type f16|bf16|q8_0]`: a Hugging Face model
// directory (llama, qwen2, qwen3) as a GGUF file: llama.cpp tensor names, `<arch>.*` metadata,
// norms in F32, matrices in the chosen type (Q8_0 needs rows that are a multiple of 32; others stay
// F16). The tokenizer is not embedded yet: petrel reads it from a directory, llama.cpp needs
// tokenizer.ggml.* keys this writer does not produce.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "core/quant_blocks.h"
#include "formats/gguf_model.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"

namespace petrel::cli {

int RunConvert(int argc, char** argv) {
  std::string to = "gguf", out, type = "f16";
  Flags f("petrel convert IN_DIR --to gguf -o OUT.gguf [--type f16|bf16|q8_0]");
  f.Add("to", &to, "output format: gguf")
      .Add("output", &out, "output file; also -o")
      .Add("type", &type, "f16 (default), bf16 or q8_0");
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a == "-o" ? const_cast<char*>("--output") : a.data());
  if (auto st = f.Parse(argc, av.data()); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1 || out.empty()) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  if (to != "gguf") return ReportError(Unsupported("--to ", to, " (gguf)"));
  if (type != "f16" && type != "bf16" && type != "q8_0") return ReportError(InvalidArgument("--type f16, bf16 or q8_0"));
  const std::string dir = f.positional()[0];
  auto cfg = formats::LoadHfConfig(dir);
  if (!cfg.ok()) return ReportError(cfg.error());
  const formats::ModelConfig& c = *cfg;
  if (c.architecture != "llama" && c.architecture != "qwen2" && c.architecture != "qwen3")
    return ReportError(Unsupported("convert to GGUF: architecture ", c.architecture));
  if (c.rope.type != formats::RopeType::kDefault) return ReportError(Unsupported("convert to GGUF: RoPE scaling"));
  auto store = formats::TensorStore::OpenDirectory(dir);
  if (!store.ok()) return ReportError(store.error());

  const std::string a = c.architecture;
  OrderedJson kv;
  kv["general.architecture"] = a;
  kv["general.name"] = dir;
  kv["general.file_type"] = type == "q8_0" ? 7u : type == "bf16" ? 32u : 1u;  // llama_ftype
  kv[a + ".block_count"] = (uint64_t)c.n_layers;
  kv[a + ".context_length"] = (uint64_t)c.max_position_embeddings;
  kv[a + ".embedding_length"] = (uint64_t)c.d_model;
  kv[a + ".feed_forward_length"] = (uint64_t)c.ffn_dim;
  kv[a + ".attention.head_count"] = (uint64_t)c.n_heads;
  kv[a + ".attention.head_count_kv"] = (uint64_t)c.n_kv_heads;
  kv[a + ".attention.key_length"] = (uint64_t)c.head_dim;
  kv[a + ".attention.value_length"] = (uint64_t)c.head_dim;
  kv[a + ".attention.layer_norm_rms_epsilon"] = (float)c.rms_eps;
  kv[a + ".rope.freq_base"] = (float)c.rope.theta;
  if (c.bos_token_id >= 0) kv["tokenizer.ggml.bos_token_id"] = (uint64_t)c.bos_token_id;
  if (!c.eos_token_ids.empty()) kv["tokenizer.ggml.eos_token_id"] = (uint64_t)c.eos_token_ids[0];

  std::vector<std::vector<char>> bufs;
  bufs.reserve(store->all().size());
  std::vector<formats::GgufTensorToWrite> tensors;
  for (const auto& [name, t] : store->all()) {
    const std::string g = formats::HfToGgufName(name);
    if (g.empty()) return ReportError(Unsupported("convert to GGUF: no GGUF name for tensor `", name, "`"));
    if (t->dtype != DType::kF32 && t->dtype != DType::kF16 && t->dtype != DType::kBF16)
      return ReportError(Unsupported("convert to GGUF: tensor `", name, "` has dtype ", DTypeName(t->dtype)));
    const int64_t n = t->shape.NumElements();
    std::vector<float> x(n);
    ConvertToF32(t->data, t->dtype, x.data(), n);
    std::vector<int64_t> ne(t->shape.dims.begin(), t->shape.dims.begin() + t->shape.rank);
    std::reverse(ne.begin(), ne.end());
    uint32_t gt;
    std::vector<char> buf;
    if (t->shape.rank == 1) {
      gt = (uint32_t)formats::GgmlType::kF32;
      buf.resize(n * 4);
      ConvertFromF32(x.data(), DType::kF32, buf.data(), n);
    } else if (type == "q8_0" && ne[0] % 32 == 0) {
      gt = (uint32_t)formats::GgmlType::kQ8_0;
      buf.resize(DTypeBytes(DType::kQ8_0, n));
      quant::QuantizeRow(x.data(), n, DType::kQ8_0, buf.data());  // rows are whole blocks
    } else {
      const DType dt = type == "bf16" ? DType::kBF16 : DType::kF16;
      gt = (uint32_t)(dt == DType::kBF16 ? formats::GgmlType::kBF16 : formats::GgmlType::kF16);
      buf.resize(n * 2);
      ConvertFromF32(x.data(), dt, buf.data(), n);
    }
    if (a == "llama" && (g.ends_with("attn_q.weight") || g.ends_with("attn_k.weight"))) {
      const int64_t heads = g.ends_with("attn_q.weight") ? c.n_heads : c.n_kv_heads;
      formats::PermuteQkRows(buf.data(), heads, c.head_dim, buf.size() / (size_t)t->shape[0]);
    }
    bufs.push_back(std::move(buf));
    tensors.push_back({g, gt, ne, bufs.back().data(), bufs.back().size()});
    std::fprintf(stderr, "\r%zu/%zu %-40s", tensors.size(), store->all().size(), g.c_str());
  }
  if (auto st = formats::WriteGguf(out, kv, tensors); !st.ok()) return ReportError(st.error());
  std::fprintf(stderr, "\nwrote %s (%s, %zu tensors)\n", out.c_str(), type.c_str(), tensors.size());
  return 0;
}

}  // namespace petrel::cli
