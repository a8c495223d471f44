// `petrel convert IN --to safetensors -o OUT_DIR`: a PyTorch checkpoint (`pytorch_model.bin`, or
// shards + `pytorch_model.bin.index.json`, or one .bin file) as safetensors, sharded like the
// input, read by petrel's restricted unpickler (formats/pickle.h: nothing in the file is ever
// executed; a hostile pickle is refused). The directory's other files (config, tokenizer) are
// copied, so OUT_DIR loads directly.
//
// `petrel convert IN_DIR --to gguf -o OUT.gguf [--type f16|bf16|q8_0]`: a Hugging Face model
// directory (llama, qwen2, qwen3) as a GGUF file: llama.cpp tensor names, `<arch>.*` metadata,
// norms in F32, matrices in the chosen type (Q8_0 needs rows that are a multiple of 32; others stay
// F16). The tokenizer.json is embedded as llama.cpp's tokenizer.ggml.* keys and the chat template
// as tokenizer.chat_template (tokenizer/gguf_vocab.h), so the file runs on its own.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "core/quant_blocks.h"
#include "formats/gguf_model.h"
#include "formats/hf_config.h"
#include "formats/pickle_torch.h"
#include "formats/safetensors.h"
#include "template/chat_template.h"
#include "tokenizer/gguf_vocab.h"

namespace petrel::cli {

namespace {

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Pickle checkpoint(s) -> safetensors in out_dir, plus the input directory's other files.
int ConvertPickle(const std::string& in, const std::string& out_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return ReportError(IoError("cannot create ", out_dir, ": ", ec.message()));
  auto written = formats::ConvertTorchToSafetensors(in, out_dir);
  if (!written.ok()) return ReportError(written.error());
  size_t copied = 0;
  if (fs::is_directory(in)) {
    for (const auto& e : fs::directory_iterator(in)) {
      const std::string fn = e.path().filename().string();
      if (!e.is_regular_file() || fn.ends_with(".bin") || fn == "pytorch_model.bin.index.json" ||
          fn.find(".safetensors") != std::string::npos || fn.ends_with(".gguf"))
        continue;
      fs::copy_file(e.path(), fs::path(out_dir) / fn, fs::copy_options::overwrite_existing, ec);
      if (ec) return ReportError(IoError("copying ", e.path().string(), ": ", ec.message()));
      ++copied;
    }
  }
  for (const auto& w : *written) std::fprintf(stderr, "wrote %s/%s\n", out_dir.c_str(), w.c_str());
  if (copied) std::fprintf(stderr, "copied %zu other files\n", copied);
  return 0;
}

}  // namespace

int RunConvert(int argc, char** argv) {
  std::string to = "gguf", out, type = "f16";
  Flags f("petrel convert IN_DIR --to gguf -o OUT.gguf [--type f16|bf16|q8_0]\n"
          "       petrel convert IN_DIR|FILE.bin --to safetensors -o OUT_DIR");
  f.Add("to", &to, "output format: gguf or safetensors")
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
  if (to == "safetensors") return ConvertPickle(f.positional()[0], out);
  if (to != "gguf") return ReportError(Unsupported("--to ", to, " (gguf, safetensors)"));
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
  // The tokenizer (tokenizer.ggml.*) and chat template, so the file is self-contained for
  // petrel and llama.cpp alike; eos ids: config.json's, then generation_config.json's others.
  std::vector<int64_t> eos_ids = c.eos_token_ids;
  if (auto g = formats::LoadGenerationConfig(dir); g.ok()) {
    for (int64_t e : g->eos_token_ids)
      if (std::find(eos_ids.begin(), eos_ids.end(), e) == eos_ids.end()) eos_ids.push_back(e);
  }
  const std::string tok_json = ReadFileOrEmpty(dir + "/tokenizer.json");
  if (!tok_json.empty()) {
    tokenizer::GgufVocabOptions vo;
    vo.min_tokens = c.vocab_size;
    if (c.bos_token_id >= 0) vo.bos_id = (int32_t)c.bos_token_id;
    if (!eos_ids.empty()) vo.eos_id = (int32_t)eos_ids[0];
    if (eos_ids.size() > 1) vo.eot_id = (int32_t)eos_ids[1];
    if (auto tpl = jinja::ChatTemplate::FromModelDir(dir); tpl.ok()) vo.chat_template = tpl->source();
    if (auto st = tokenizer::HfTokenizerToGguf(tok_json, ReadFileOrEmpty(dir + "/tokenizer_config.json"), vo, &kv);
        !st.ok())
      return ReportError(st.error().WithContext("embedding the tokenizer of " + dir));
  } else {
    std::fprintf(stderr, "petrel convert: no tokenizer.json in %s: the GGUF will have no tokenizer\n", dir.c_str());
    if (c.bos_token_id >= 0) kv["tokenizer.ggml.bos_token_id"] = (uint64_t)c.bos_token_id;
    if (!eos_ids.empty()) kv["tokenizer.ggml.eos_token_id"] = (uint64_t)eos_ids[0];
  }

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
