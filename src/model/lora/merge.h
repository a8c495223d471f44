// `petrel merge`: a base model plus a LoRA adapter (PEFT or MLX-LM) -> a standalone Hugging Face
// model directory, as PEFT's merge_and_unload() + save_pretrained() give it:
//   W' = W + scale · (B @ A)   computed in f32, then rounded once to the output dtype
// (PEFT computes the delta in f32 and adds it in place to the base weight, which rounds once).
// Output: model.safetensors, or model-0000i-of-0000n.safetensors + model.safetensors.index.json
// when larger than max_shard_bytes; config.json (torch_dtype updated when the dtype changes),
// generation_config.json and the tokenizer files copied.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "model/lora/adapter.h"

namespace petrel::model::lora {

struct MergeOptions {
  std::optional<DType> dtype;                  // output dtype; default: each tensor's stored dtype
  int64_t max_shard_bytes = 5'000'000'000;     // as save_pretrained's default "5GB"
  int n_threads = 0;                           // 0 = all hardware threads
  // Called after each tensor with (bytes written so far, total bytes); may be empty.
  std::function<void(int64_t, int64_t)> progress;
};

// Merges the adapter in `adapter_dir` into the model in `base_dir` and writes `out_dir`.
// Errors: anything ReadAdapter / LoadModel-style validation reports, kInvalidArgument when out_dir
// is base_dir, kIo on write failures.
Status MergeAdapter(const std::string& base_dir, const std::string& adapter_dir,
                    const std::string& out_dir, const MergeOptions& opts);

// out[o, i] = round_to(dtype, w[o, i] + scale · Σ_k b[o, k] a[k, i]) for one linear; w is the base
// weight [out, in] in w_dtype. Exposed for tests.
void MergeLinear(const void* w, DType w_dtype, const LoraLinear& l, DType out_dtype, void* out,
                 int n_threads);

// Parses "5GB", "500MB", "2GiB", "1000000" (bytes) as save_pretrained's max_shard_size does.
Result<int64_t> ParseByteSize(const std::string& s);

}  // namespace petrel::model::lora
