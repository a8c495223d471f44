// A loaded model: config, weights (mmapped or generated), a backend, and the forward pass over a
// flattened batch of sequences with a paged KV cache. The runtime sees only this interface.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/model_config.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "kernels/backend.h"
#include "kernels/op_profile.h"
#include "model/lora/lora_batch.h"
#include "model/weights.h"

namespace petrel::model {

// One forward step: T tokens from one or more sequences, flattened. Rows of a sequence are
// contiguous and in position order (see kernels::AttentionSeq).
struct ForwardBatch {
  std::vector<int32_t> tokens;     // [T]
  std::vector<int32_t> positions;  // [T]
  std::vector<int64_t> slots;      // [T] KV-cache slot (block * block_size + offset) of each token
  std::vector<kernels::AttentionSeq> seqs;
  std::vector<int32_t> logit_rows; // rows whose logits are wanted (e.g. each sequence's last)
  // LoRA adapter of each sequence, parallel to `seqs` (nullptr = base model); empty = no adapters.
  // The adapters must outlive the call and have been loaded for this model (lora::LoadAdapter).
  // Sequences that share an adapter should be neighbours so their rows form one run.
  std::vector<const lora::LoraAdapter*> seq_adapters;
};

struct LoadOptions {
  std::string load_format = "auto";  // "auto" (safetensors) or "dummy" (random weights)
  int n_threads = 0;                 // CPU threads; 0 = all
  std::string device = "cpu";        // backend: "cpu", "cuda", "cuda:N" (kernels::CreateBackend)
  uint64_t dummy_seed = 0;
  std::string quant{};               // quantize at load: "", int8, int4[:group], q4_0 (quantize.h)
  std::string matmul_precision = "auto";  // CPU matmul over bf16 weights: auto, f32, bf16
                                          // (kernels::MatMulPrecision)
  bool op_profile = false;  // time every backend op (kernels/op_profile.h; Model::op_profile())
};

class Model {
 public:
  const formats::ModelConfig& config() const { return config_; }
  const formats::GenerationConfig& generation_config() const { return generation_config_; }
  const std::string& dir() const { return dir_; }
  kernels::Backend& backend() { return *backend_; }
  // The op timer when loaded with LoadOptions::op_profile, else null.
  kernels::OpProfile* op_profile() { return op_profile_; }
  // Bytes of weights the forward pass reads (lm_head counted once when tied).
  int64_t WeightBytes() const { return weight_bytes_; }

  // A KV cache of n_blocks blocks for this model.
  std::unique_ptr<kernels::KvCache> CreateKvCache(int64_t n_blocks, int block_size, DType dtype);

  // Runs the batch; writes logits [batch.logit_rows.size(), vocab] (f32) to `logits`.
  // Stores every token's K/V in `cache` at batch.slots.
  void Forward(const ForwardBatch& batch, kernels::KvCache& cache, float* logits);
  // Forward with greedy choices: ids[r] = argmax of logit row r, computed by the backend
  // (Backend::ArgMax; on a device backend only the ids come back, not the logits).
  void ForwardArgMax(const ForwardBatch& batch, kernels::KvCache& cache, int32_t* ids) {
    greedy_ids_ = ids;
    Forward(batch, cache, nullptr);
    greedy_ids_ = nullptr;
  }

  // Pipelined greedy decoding (Backend::ArgMaxAsync): runs the batch like ForwardArgMax but may
  // return before its ids reach the host, so that the caller prepares and launches the next
  // step while the device runs this one; CollectArgMax(ids) waits for the oldest launched
  // step's ids (at most Backend::kMaxArgMaxInFlight outstanding). With `tokens_from_last`, row
  // i's token is id i of the previous launch (batch.tokens' values are ignored): taken on the
  // device where the backend feeds them, else read back on the host first.
  void LaunchArgMax(const ForwardBatch& batch, kernels::KvCache& cache, bool tokens_from_last);
  void CollectArgMax(int32_t* ids) { backend_->TakeArgMax(ids); }
  // The same with the device sampler (Backend::SampleRowsAsync, one spec per logit row) instead
  // of the argmax; needs a backend with SamplesAsync() (and FeedsStepTokens() for
  // tokens_from_last). CollectSample(out) takes the oldest launched step's results.
  void LaunchSample(const ForwardBatch& batch, kernels::KvCache& cache,
                    std::span<const kernels::SampleSpec> specs, bool tokens_from_last);
  void CollectSample(std::span<kernels::SampleResult> out) { backend_->TakeSampled(out); }

  // Forward that leaves the logits [R, vocab] (f32) in the backend's memory and hands them to
  // `consume` before they are released (e.g. to sample on the device: Backend::SampleRows).
  using LogitsConsumer = std::function<void(kernels::Backend& be, TensorView logits)>;
  void ForwardLogits(const ForwardBatch& batch, kernels::KvCache& cache,
                     const LogitsConsumer& consume) {
    consume_ = &consume;
    Forward(batch, cache, nullptr);
    consume_ = nullptr;
  }

  friend Result<std::unique_ptr<Model>> LoadModel(const std::string& dir, const LoadOptions& opts);

 private:
  // Scratch activations, grown to the largest batch seen.
  struct Activations {
    int64_t capacity = 0;
    Tensor x, h, q, k, v, attn, gate, up, out;
  };
  void EnsureActivations(int64_t T);

  std::string dir_;
  formats::ModelConfig config_;
  formats::GenerationConfig generation_config_;
  std::unique_ptr<kernels::Backend> backend_;
  kernels::OpProfile* op_profile_ = nullptr;  // owned by backend_
  formats::TensorStore store_;            // owns the mmapped files (empty for dummy weights)
  std::unique_ptr<formats::GgufFile> gguf_;  // the mmapped .gguf file, when loaded from one
  std::vector<Tensor> owned_;             // generated or converted weights
  Weights w_;
  kernels::RopeTable rope_;
  int64_t weight_bytes_ = 0;
  Activations act_;
  int32_t* greedy_ids_ = nullptr;  // set by ForwardArgMax for the duration of one Forward
  // A pipelined step (LaunchArgMax / LaunchSample), for the duration of one Forward: its result
  // by ArgMaxAsync, or SampleRowsAsync with `specs`; `feed`: the backend feeds the tokens from
  // the last step's ids (BatchMetadata::tokens_from_last_step).
  struct AsyncStep {
    bool on = false;
    bool feed = false;
    bool sample = false;
    std::span<const kernels::SampleSpec> specs{};
  };
  void ForwardAsync(const ForwardBatch& batch, kernels::KvCache& cache, AsyncStep step);
  AsyncStep async_;
  const LogitsConsumer* consume_ = nullptr;  // set by ForwardLogits likewise
  lora::LoraBatch lora_;  // this step's adapter runs and their scratch
};

// Loads MODEL_DIR (config.json, generation_config.json, safetensors) or, with load_format
// "dummy", random weights from config.json alone. Every tensor's name and shape is checked up
// front; the first mismatch is reported by name.
Result<std::unique_ptr<Model>> LoadModel(const std::string& dir, const LoadOptions& opts);

}  // namespace petrel::model
