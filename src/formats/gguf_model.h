// GGUF <-> Hugging Face for the Llama family (llama, qwen2, qwen3): tensor names (llama.cpp's
// `blk.N.attn_q.weight` <-> `model.layers.N.self_attn.q_proj.weight`) and ModelConfig from the
// `<arch>.*` metadata keys.
#pragma once

#include <string>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/model_config.h"

namespace petrel::formats {

// HF name for a GGUF tensor name ("" when it has no HF counterpart, e.g. rope_freqs).
std::string GgufToHfName(const std::string& gguf_name);
// GGUF name for an HF tensor name ("" when unknown).
std::string HfToGgufName(const std::string& hf_name);

// ModelConfig from general.architecture and its keys. Unsupported architectures and RoPE
// scaling types are refused by name. vocab_size comes from token_embd.weight.
Result<ModelConfig> ModelConfigFromGguf(const GgufFile& f);

// llama.cpp's converter stores llama (not qwen) q/k projection rows permuted for its interleaved
// RoPE; this undoes it: rows [n_heads * head_dim] of `row_bytes` each, in place.
void UnpermuteQkRows(void* rows, int64_t n_heads, int64_t head_dim, size_t row_bytes);
// The converter's permutation itself (HF order -> llama GGUF order), for writing llama GGUFs.
void PermuteQkRows(void* rows, int64_t n_heads, int64_t head_dim, size_t row_bytes);

}  // namespace petrel::formats
