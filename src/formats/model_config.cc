#include "formats/model_config.h"

namespace petrel::formats {

int64_t ModelConfig::NumParameters() const {
  const int64_t q = n_heads * head_dim, kv = n_kv_heads * head_dim;
  int64_t attn = d_model * q + 2 * d_model * kv + q * d_model;
  if (qkv_bias) attn += q + 2 * kv;
  if (o_bias) attn += d_model;
  if (qk_norm) attn += 2 * head_dim;
  int64_t mlp = 3 * d_model * ffn_dim + (mlp_bias ? 2 * ffn_dim + d_model : 0);
  int64_t per_layer = attn + mlp + 2 * d_model;
  return n_layers * per_layer + vocab_size * d_model * (tie_embeddings ? 1 : 2) + d_model;
}

Status ModelConfig::Validate() const {
  auto positive = [](const char* name, int64_t v, int64_t max) -> Status {
    if (v <= 0 || v > max) return InvalidFormat(name, " = ", v, " is out of range (1..", max, ")");
    return OkStatus();
  };
  PETREL_TRY(positive("vocab_size", vocab_size, 1 << 24));
  PETREL_TRY(positive("hidden_size", d_model, 1 << 17));
  PETREL_TRY(positive("num_hidden_layers", n_layers, 4096));
  PETREL_TRY(positive("num_attention_heads", n_heads, 4096));
  PETREL_TRY(positive("num_key_value_heads", n_kv_heads, 4096));
  PETREL_TRY(positive("head_dim", head_dim, 4096));
  PETREL_TRY(positive("intermediate_size", ffn_dim, 1 << 20));
  PETREL_TRY(positive("max_position_embeddings", max_position_embeddings, 1 << 24));
  if (n_heads % n_kv_heads != 0)
    return InvalidFormat("num_attention_heads (", n_heads, ") is not a multiple of num_key_value_heads (", n_kv_heads, ")");
  if (head_dim % 2 != 0) return InvalidFormat("head_dim ", head_dim, " must be even for RoPE");
  if (!(rms_eps > 0) || rms_eps > 1) return InvalidFormat("rms_norm_eps = ", rms_eps, " is out of range");
  if (!(rope.theta > 0)) return InvalidFormat("rope_theta = ", rope.theta, " must be > 0");
  return OkStatus();
}

}  // namespace petrel::formats
