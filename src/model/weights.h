// The weights of a Llama-family model as named TensorViews (PyTorch Linear layout [out, in]).
// ForEachTensor() is the single list of every tensor: HF name, expected shape, required or not;
// the loader binds and checks them all up front with it [gemma.cpp ForEachTensor].
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/model_config.h"

namespace petrel::model {

struct LayerWeights {
  TensorView attn_norm;   // [d_model]
  TensorView q, k, v, o;  // [n_heads*hd, d], [n_kv*hd, d], [n_kv*hd, d], [d, n_heads*hd]
  TensorView q_bias, k_bias, v_bias, o_bias;  // optional (qwen2 / attention_bias)
  TensorView q_norm, k_norm;                  // [head_dim] (qwen3)
  TensorView ffn_norm;    // [d_model]  (post_attention_layernorm)
  TensorView gate, up;    // [ffn_dim, d_model]
  TensorView down;        // [d_model, ffn_dim]
  TensorView gate_bias, up_bias, down_bias;   // optional (mlp_bias)
};

struct Weights {
  TensorView embed;        // [vocab, d_model]
  std::vector<LayerWeights> layers;
  TensorView final_norm;   // [d_model]
  TensorView lm_head;      // [vocab, d_model]; aliases embed when tied
};

struct TensorSpec {
  std::string name;  // Hugging Face name
  Shape shape;
  bool required;
};

// Calls fn(spec, TensorView& slot) for every tensor the config implies. `w` may be non-const so the
// loader can bind slots; lm_head is listed only when embeddings are untied.
template <typename Fn>
void ForEachTensor(const formats::ModelConfig& c, Weights& w, Fn&& fn) {
  const int64_t d = c.d_model, hd = c.head_dim, q = c.n_heads * hd, kv = c.n_kv_heads * hd;
  fn(TensorSpec{"model.embed_tokens.weight", {c.vocab_size, d}, true}, w.embed);
  w.layers.resize(c.n_layers);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    fn(TensorSpec{p + "input_layernorm.weight", {d}, true}, l.attn_norm);
    fn(TensorSpec{p + "self_attn.q_proj.weight", {q, d}, true}, l.q);
    fn(TensorSpec{p + "self_attn.k_proj.weight", {kv, d}, true}, l.k);
    fn(TensorSpec{p + "self_attn.v_proj.weight", {kv, d}, true}, l.v);
    fn(TensorSpec{p + "self_attn.o_proj.weight", {d, q}, true}, l.o);
    if (c.qkv_bias) {
      fn(TensorSpec{p + "self_attn.q_proj.bias", {q}, true}, l.q_bias);
      fn(TensorSpec{p + "self_attn.k_proj.bias", {kv}, true}, l.k_bias);
      fn(TensorSpec{p + "self_attn.v_proj.bias", {kv}, true}, l.v_bias);
    }
    if (c.o_bias) fn(TensorSpec{p + "self_attn.o_proj.bias", {d}, true}, l.o_bias);
    if (c.qk_norm) {
      fn(TensorSpec{p + "self_attn.q_norm.weight", {hd}, true}, l.q_norm);
      fn(TensorSpec{p + "self_attn.k_norm.weight", {hd}, true}, l.k_norm);
    }
    fn(TensorSpec{p + "post_attention_layernorm.weight", {d}, true}, l.ffn_norm);
    fn(TensorSpec{p + "mlp.gate_proj.weight", {c.ffn_dim, d}, true}, l.gate);
    fn(TensorSpec{p + "mlp.up_proj.weight", {c.ffn_dim, d}, true}, l.up);
    fn(TensorSpec{p + "mlp.down_proj.weight", {d, c.ffn_dim}, true}, l.down);
    if (c.mlp_bias) {
      fn(TensorSpec{p + "mlp.gate_proj.bias", {c.ffn_dim}, true}, l.gate_bias);
      fn(TensorSpec{p + "mlp.up_proj.bias", {c.ffn_dim}, true}, l.up_bias);
      fn(TensorSpec{p + "mlp.down_proj.bias", {d}, true}, l.down_bias);
    }
  }
  fn(TensorSpec{"model.norm.weight", {d}, true}, w.final_norm);
  if (!c.tie_embeddings) fn(TensorSpec{"lm_head.weight", {c.vocab_size, d}, true}, w.lm_head);
}

}  // namespace petrel::model
