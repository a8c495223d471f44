// Quantized weights in the loader: quantization at load (`--quant int8|int4[:group]|q4_0`) and the
// conversion of MLX affine-quantized checkpoints (uint32-packed codes + scales + biases) into the
// engine's block types (core/quant_blocks.h), which the CPU matmul reads directly.
//
// Choices (see docs/PERFORMANCE.md, ## Quantization):
//  - int8  -> Q8_0 (symmetric per 32) for every Linear, the embedding and lm_head.
//  - int4:g -> Q4_1 (affine, scale + min per group of g = 32/64/128; default 64) for the Linears;
//    the embedding / lm_head go to Q8_0: they are the single largest matrix of small models (tied
//    in Qwen3-0.6B: 26% of the parameters, read every token), so leaving them bf16 would cost most
//    of the decode speed-up, while 4 bits there costs the most quality (llama.cpp likewise keeps
//    its output tensor at 6 bits in Q4_0 files).
//  - q4_0 -> Q4_0 for the Linears (GGUF's type, for comparison), embedding / lm_head Q8_0.
//    (llama-quantize's Q4_0 keeps them at Q6_K, 6.56 bits, which petrel reads as bf16.)
//  - q4_0:pure -> Q4_0 everywhere, embedding / lm_head included: llama-quantize --pure's file,
//    byte for byte the same amount of weights per token (for like-for-like speed comparisons).
// Norms and biases are never quantized. A matrix whose input dimension is not a multiple of the
// group stays in its float type.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "core/tensor.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"
#include "model/weights.h"

namespace petrel::model {

struct QuantSpec {
  bool enabled = false;
  DType linear = DType::kQ8_0;  // Q8_0, Q4_0 or Q4_1
  int64_t group = 32;           // Q4_1 group (elements sharing scale and min)
  DType embed = DType::kQ8_0;   // embedding and lm_head
  std::string ToString() const;
};

// "" (off), "int8", "int4", "int4:32|64|128", "q4_0", "q4_0:pure", "q8_0". Errors name the bad value.
Result<QuantSpec> ParseQuantSpec(std::string_view s);

// Replaces each float weight view in `w` (Linear weights, embedding, lm_head) by a quantized copy
// appended to `owned`. Already-quantized views (MLX checkpoints) are left alone. Runs rows in
// parallel on `threads` threads. Returns the number of matrices quantized.
int QuantizeWeights(const formats::ModelConfig& c, const QuantSpec& q, Weights& w,
                    std::vector<Tensor>& owned, int threads);

// One quantized Linear / Embedding of an MLX checkpoint: `P.weight` (uint32 [out, in*bits/32]),
// `P.scales` and `P.biases` ([out, in/group], float) -> a [out, in] tensor of Q4_1 (bits 4) or
// Q8_A (bits 8), exactly (scales and biases rounded to f16; the number of values that change in
// that rounding is added to *inexact). Other bit widths are refused by name.
Result<Tensor> ConvertMlxQuantized(const formats::TensorStore& store, const std::string& prefix,
                                   const Shape& logical, int bits, int64_t group, int64_t* inexact);

// The MLX "quantization" object of config.json for module `prefix` ("model.layers.0.mlp.up_proj"):
// its per-module override when present (false = not quantized), else the top-level group_size /
// bits. Returns false in *quantized when the module is not quantized.
Status MlxModuleQuantization(const Json& quant_cfg, const std::string& prefix, bool* quantized,
                             int* bits, int64_t* group);

}  // namespace petrel::model
