#include "formats/gguf_model.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace petrel::formats {

namespace {

struct NamePair {
  const char* gguf;
  const char* hf;
};
// Per-layer suffixes: blk.N.<gguf> <-> model.layers.N.<hf>.
constexpr NamePair kLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.bias", "self_attn.o_proj.bias"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
constexpr NamePair kGlobal[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

}  // namespace

std::string GgufToHfName(const std::string& g) {
  for (const auto& p : kGlobal)
    if (g == p.gguf) return p.hf;
  if (g.rfind("blk.", 0) != 0) return "";
  const size_t dot = g.find('.', 4);
  if (dot == std::string::npos) return "";
  const std::string layer = g.substr(4, dot - 4), rest = g.substr(dot + 1);
  for (const auto& p : kLayer)
    if (rest == p.gguf) return "model.layers." + layer + "." + p.hf;
  return "";
}

std::string HfToGgufName(const std::string& h) {
  for (const auto& p : kGlobal)
    if (h == p.hf) return p.gguf;
  const std::string pre = "model.layers.";
  if (h.rfind(pre, 0) != 0) return "";
  const size_t dot = h.find('.', pre.size());
  if (dot == std::string::npos) return "";
  const std::string layer = h.substr(pre.size(), dot - pre.size()), rest = h.substr(dot + 1);
  for (const auto& p : kLayer)
    if (rest == p.hf) return "blk." + layer + "." + p.gguf;
  return "";
}

Result<ModelConfig> ModelConfigFromGguf(const GgufFile& f) {
  const Json& kv = f.metadata();
  auto str = [&](const std::string& k) -> std::string {
    return kv.contains(k) && kv[k].is_string() ? kv[k].get<std::string>() : std::string();
  };
  const std::string arch = str("general.architecture");
  if (arch != "llama" && arch != "qwen2" && arch != "qwen3")
    return Unsupported(f.name(), ": GGUF architecture \"", arch, "\" (llama, qwen2, qwen3 are supported)");
  auto num = [&](const std::string& k, bool required, double def) -> Result<double> {
    const std::string key = arch + "." + k;
    if (!kv.contains(key)) {
      if (required) return InvalidFormat(f.name(), ": missing metadata \"", key, "\"");
      return def;
    }
    if (!kv[key].is_number()) return InvalidFormat(f.name(), ": metadata \"", key, "\" is not a number");
    return kv[key].get<double>();
  };
  ModelConfig c;
  c.architecture = arch;
  PETREL_TRY(double layers, num("block_count", true, 0));
  PETREL_TRY(double d, num("embedding_length", true, 0));
  PETREL_TRY(double ffn, num("feed_forward_length", true, 0));
  PETREL_TRY(double heads, num("attention.head_count", true, 0));
  PETREL_TRY(double kv_heads, num("attention.head_count_kv", false, heads));
  PETREL_TRY(double ctx, num("context_length", false, 4096));
  PETREL_TRY(double eps, num("attention.layer_norm_rms_epsilon", false, 1e-6));
  PETREL_TRY(double theta, num("rope.freq_base", false, 10000.0));
  PETREL_TRY(double head_dim, num("attention.key_length", false, heads > 0 ? d / heads : 0));
  const std::string scaling = str(arch + ".rope.scaling.type");
  if (!scaling.empty() && scaling != "none")
    return Unsupported(f.name(), ": GGUF RoPE scaling \"", scaling, "\" is not supported yet");
  c.n_layers = (int64_t)layers;
  c.d_model = (int64_t)d;
  c.ffn_dim = (int64_t)ffn;
  c.n_heads = (int64_t)heads;
  c.n_kv_heads = (int64_t)kv_heads;
  c.head_dim = (int64_t)head_dim;
  c.max_position_embeddings = (int64_t)ctx;
  c.rms_eps = eps;
  c.rope.theta = theta;
  c.qkv_bias = arch == "qwen2";
  c.qk_norm = arch == "qwen3";
  const GgufTensor* emb = f.Find("token_embd.weight");
  if (!emb || emb->ne.size() != 2) return InvalidFormat(f.name(), ": missing token_embd.weight");
  c.vocab_size = emb->ne[1];
  c.tie_embeddings = f.Find("output.weight") == nullptr;
  c.dtype = DType::kBF16;
  if (kv.contains("tokenizer.ggml.bos_token_id") && kv["tokenizer.ggml.bos_token_id"].is_number_integer())
    c.bos_token_id = kv["tokenizer.ggml.bos_token_id"].get<int64_t>();
  // Generation ends on any of llama.cpp's end-of-generation ids (eos, eot, eom).
  for (const char* k : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    if (!kv.contains(k) || !kv[k].is_number_integer() || kv[k].get<int64_t>() < 0) continue;
    const int64_t id = kv[k].get<int64_t>();
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end()) c.eos_token_ids.push_back(id);
  }
  PETREL_TRY(c.Validate());
  return c;
}

namespace {

// Row (h, i, j) of [n_heads, 2, head_dim / 2] (HF order) <-> row (h, j, i) of
// [n_heads, head_dim / 2, 2] (the llama.cpp converter's order), per head through one scratch copy.
void MoveQkRows(void* rows, int64_t n_heads, int64_t head_dim, size_t row_bytes, bool to_hf) {
  const int64_t half = head_dim / 2;
  std::vector<char> tmp((size_t)head_dim * row_bytes);
  char* base = static_cast<char*>(rows);
  for (int64_t h = 0; h < n_heads; ++h) {
    char* head = base + (size_t)(h * head_dim) * row_bytes;
    for (int64_t j = 0; j < half; ++j)
      for (int64_t i = 0; i < 2; ++i) {
        const int64_t hf = i * half + j, gguf = 2 * j + i;
        std::memcpy(tmp.data() + (size_t)(to_hf ? hf : gguf) * row_bytes,
                    head + (size_t)(to_hf ? gguf : hf) * row_bytes, row_bytes);
      }
    std::memcpy(head, tmp.data(), tmp.size());
  }
}

}  // namespace

// The converter's permute: row (h, i, j) of [n_heads, 2, head_dim / 2] goes to (h, j, i) of
// [n_heads, head_dim / 2, 2]. Undo: stored row h * hd + 2 * j + i -> HF row h * hd + i * hd/2 + j.
void UnpermuteQkRows(void* rows, int64_t n_heads, int64_t head_dim, size_t row_bytes) {
  MoveQkRows(rows, n_heads, head_dim, row_bytes, /*to_hf=*/true);
}

void PermuteQkRows(void* rows, int64_t n_heads, int64_t head_dim, size_t row_bytes) {
  MoveQkRows(rows, n_heads, head_dim, row_bytes, /*to_hf=*/false);
}

}  // namespace petrel::formats
