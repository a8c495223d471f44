// LoRA adapters: PEFT (adapter_config.json + adapter_model.safetensors) and MLX-LM
// (adapter_config.json + adapters.safetensors) read into one internal form — per target linear of
// each layer, A [rank, in] and B [out, rank] in f32 and a scale — so that
//   y = W x + scale · B (A x)
// is the same computation whatever layout the adapter came in (see
// ../shared/reference/PEERS-AND-FORMATS.md §7, §9, §10 for the two layouts).
//
// What we do not implement is refused with a message naming the config field or tensor (DoRA,
// modules_to_save, bias, PiSSA/LoftQ/OLoRA/CorDA inits, embedding / lm_head adapters, ...), and an
// adapter whose shapes do not fit the base model is refused, never applied.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "core/tensor.h"
#include "formats/model_config.h"

namespace petrel::model::lora {

// The linears of a Llama-family block an adapter may target, in forward order.
enum class LoraTarget : uint8_t { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kNumLoraTargets = 7;
inline constexpr std::array<LoraTarget, kNumLoraTargets> kAllLoraTargets = {
    LoraTarget::kQ, LoraTarget::kK, LoraTarget::kV, LoraTarget::kO,
    LoraTarget::kGate, LoraTarget::kUp, LoraTarget::kDown};

// "q_proj", "k_proj", ..., "down_proj" (the PEFT target_modules names).
const char* LoraTargetLeaf(LoraTarget t);
// "self_attn.q_proj", ..., "mlp.down_proj" (the path inside a block; MLX `keys`).
const char* LoraTargetPath(LoraTarget t);
// [out, in] of the target's base weight for this model.
std::array<int64_t, 2> LoraTargetShape(const formats::ModelConfig& c, LoraTarget t);

enum class AdapterFormat { kPeft, kMlx };
const char* AdapterFormatName(AdapterFormat f);  // "peft", "mlx"

// One adapted linear. Empty (present() false) when the adapter leaves this linear alone.
struct LoraLinear {
  Tensor a;                     // [rank, in]  f32
  Tensor b;                     // [out, rank] f32
  float scale = 1.0f;           // alpha / rank (PEFT), alpha / sqrt(rank) (rsLoRA), scale (MLX)
  DType file_dtype = DType::kF32;  // dtype in the adapter file (convert-adapter writes it back)

  bool present() const { return a.data() != nullptr; }
  int64_t rank() const { return a.shape()[0]; }
  int64_t in_features() const { return a.shape()[1]; }
  int64_t out_features() const { return b.shape()[0]; }
};

// The internal form of one adapter. Move-only (owns its tensors); shared read-only between the
// engine's registry and the requests that use it.
struct LoraAdapter {
  std::string path;              // directory it was read from
  AdapterFormat format = AdapterFormat::kPeft;
  // layers[i][target]: per block of the base model (size = base n_layers once validated, else
  // 1 + the highest layer index found in the file).
  std::vector<std::array<LoraLinear, kNumLoraTargets>> layers;
  // True when the adapter, by its config, covers every block of whatever base it is applied to
  // (PEFT without layers_to_transform; MLX num_layers = -1). Used by convert-adapter.
  bool all_layers = false;
  int64_t mlx_num_layers = 0;    // MLX source: its num_layers (0 otherwise)
  int64_t base_n_layers = 0;     // set once validated against a base model (0 = unknown)
  std::string base_model_name;   // informational (PEFT base_model_name_or_path)

  const LoraLinear* Find(int64_t layer, LoraTarget t) const {
    if (layer < 0 || layer >= (int64_t)layers.size()) return nullptr;
    const LoraLinear& l = layers[layer][(int)t];
    return l.present() ? &l : nullptr;
  }
  int64_t MaxRank() const;
  int64_t NumLinears() const;
  int64_t NumBytes() const;  // f32 bytes held
};

// Reads an adapter directory (format detected from adapter_config.json and the file names).
// With `base`, every shape is checked against the base model and every module the config targets
// must have its tensors; without it (convert-adapter), only internal consistency is checked.
// Errors: kNotFound (missing file / tensor), kUnsupported (a feature we refuse, naming the field),
// kInvalidFormat (bad JSON, wrong shapes, base-model mismatch).
Result<LoraAdapter> ReadAdapter(const std::string& dir, const formats::ModelConfig* base);

// ReadAdapter against a base model, as a shared immutable object for the runtime: each linear's
// scale is folded into its B (b = scale · B, scale = 1) so the forward pass does two matmuls and an
// add. Use ReadAdapter for the exact file contents (merge, convert).
Result<std::shared_ptr<const LoraAdapter>> LoadAdapter(const std::string& dir,
                                                       const formats::ModelConfig& base);

// Several adapters applied together (`--lora A --lora B`): one adapter whose per-linear A is the
// concatenation of the inputs' A along the rank and whose B is [s1·B1 | s2·B2 | ...] (scale 1), so
// y = W x + Σ s_i B_i A_i x in one pass. All inputs must have been validated for the same base.
Result<std::shared_ptr<const LoraAdapter>> CombineAdapters(
    const std::vector<std::shared_ptr<const LoraAdapter>>& adapters);

// Writes `a` as a PEFT directory (adapter_config.json + adapter_model.safetensors) or an MLX-LM
// directory (adapter_config.json + adapters.safetensors), tensors in their original file dtype, so
// converting back and forth is lossless. MLX needs one rank, one scale, the same targets in every
// adapted block and a run of last blocks; when the blocks are not all of them, `base_n_layers`
// (from --base, or known from the source) tells where the end is. Errors name what does not fit.
Status WritePeftAdapter(const LoraAdapter& a, const std::string& out_dir);
Status WriteMlxAdapter(const LoraAdapter& a, const std::string& out_dir, int64_t base_n_layers = 0);

namespace internal {
// Parsers behind ReadAdapter (in peft.cc, mlx.cc).
Result<LoraAdapter> ReadPeft(const std::string& dir, const formats::ModelConfig* base);
Result<LoraAdapter> ReadMlx(const std::string& dir, const formats::ModelConfig* base);
// Copies a [rows, cols] tensor of any float dtype to f32, transposed when `transpose`.
Tensor ToF32(const void* data, DType dtype, int64_t rows, int64_t cols, bool transpose);
// Typed config fields that never throw: the default when absent, null or of another type.
std::string JsonString(const Json& j, const char* key, const std::string& dflt);
bool JsonBool(const Json& j, const char* key, bool dflt);
// Parses "model.layers.{i}.{self_attn|mlp}.{x}_proj" (the module part of PEFT and MLX-LM tensor
// names) into (layer, target); false for anything else.
bool ParseModule(const std::string& module, int64_t* layer, LoraTarget* target);
// Checks the shapes of one linear against the base (when given) and that A and B agree.
Status CheckLinearShapes(const LoraLinear& l, int64_t layer, LoraTarget t,
                         const formats::ModelConfig* base, const std::string& what);
}  // namespace internal

}  // namespace petrel::model::lora
