// ModelConfig: the one description of a decoder-only transformer of the Llama family, filled from
// config.json (hf_config.cc) or, later, GGUF metadata. A plain struct with one Visit() that lists
// every field (printing, equality and `petrel inspect` use it) [gemma.cpp VisitFields].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/kv_quant.h"

namespace petrel::formats {

enum class RopeType { kDefault, kLinear, kLlama3, kYarn };
const char* RopeTypeName(RopeType t);

struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;                   // linear / llama3 / yarn
  double low_freq_factor = 1.0;          // llama3
  double high_freq_factor = 4.0;         // llama3
  int64_t original_max_position = 0;     // llama3 / yarn
  double beta_fast = 32.0;               // yarn
  double beta_slow = 1.0;                // yarn
  double attention_factor = 0.0;         // yarn; 0 = derived from factor (HF default)
  double mscale = 0.0, mscale_all_dim = 0.0;  // yarn (DeepSeek style), 0 = unset
  bool truncate = true;                  // yarn: round the correction range to integers
};

struct ModelConfig {
  std::string architecture;  // model_type: llama, mistral, qwen2, qwen3
  int64_t vocab_size = 0;
  int64_t d_model = 0;       // hidden_size
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn_dim = 0;       // intermediate_size
  double rms_eps = 1e-6;
  int64_t max_position_embeddings = 0;
  bool tie_embeddings = false;
  bool qkv_bias = false;     // q/k/v projections carry a bias (qwen2; llama attention_bias)
  bool o_bias = false;       // o_proj bias (llama attention_bias)
  bool mlp_bias = false;     // llama mlp_bias
  bool qk_norm = false;      // per-head RMSNorm on q and k before RoPE (qwen3)
  int64_t sliding_window = 0;  // 0 = full attention on every layer
  std::vector<bool> layer_sliding;  // per layer: sliding-window attention (empty = none)
  RopeConfig rope;
  DType dtype = DType::kBF16;  // torch_dtype / dtype: the weights' stored type
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;

  // Calls v(name, field) for every field, in declaration order.
  template <typename V>
  void Visit(V&& v) const {
    v("architecture", architecture);
    v("vocab_size", vocab_size);
    v("d_model", d_model);
    v("n_layers", n_layers);
    v("n_heads", n_heads);
    v("n_kv_heads", n_kv_heads);
    v("head_dim", head_dim);
    v("ffn_dim", ffn_dim);
    v("rms_eps", rms_eps);
    v("max_position_embeddings", max_position_embeddings);
    v("tie_embeddings", tie_embeddings);
    v("qkv_bias", qkv_bias);
    v("o_bias", o_bias);
    v("mlp_bias", mlp_bias);
    v("qk_norm", qk_norm);
    v("sliding_window", sliding_window);
    v("rope_type", std::string(RopeTypeName(rope.type)));
    v("rope_theta", rope.theta);
    v("rope_factor", rope.factor);
    v("dtype", std::string(DTypeName(dtype)));
  }

  // KV-cache bytes per token: 2 (K and V) x layers x kv_heads x head_dim x bytes per element.
  int64_t KvBytesPerToken(DType kv_dtype) const {
    return 2 * n_layers * n_kv_heads * KvHeadVectorBytes(kv_dtype, head_dim);  // int8: + scales
  }
  // Parameter count implied by the shapes (embeddings counted once when tied).
  int64_t NumParameters() const;
  // Checks internal consistency (positive sizes, heads divide, ...).
  Status Validate() const;
};

// Default sampling parameters and stop ids from generation_config.json.
struct GenerationConfig {
  bool do_sample = false;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  std::vector<int64_t> eos_token_ids;
  bool present = false;  // the file existed
};

}  // namespace petrel::formats
