// Runs one sequence through a Model without the engine: its own KV cache with a contiguous block
// table. For tools that want raw logits (petrel logits, bench, golden tests).
#pragma once

#include <memory>
#include <vector>

#include "model/model.h"

namespace petrel::model {

class SequenceRunner {
 public:
  // Room for `max_tokens` tokens; KV in `kv_dtype`.
  SequenceRunner(Model& model, int64_t max_tokens, DType kv_dtype = DType::kF32);

  // Appends `ids` to the sequence (positions continue from the tokens already run). Returns the
  // logits [ids.size(), vocab] when all_logits, else only the last row's [vocab].
  std::vector<float> Append(std::span<const int32_t> ids, bool all_logits);
  // Greedy decoding of `n` tokens from `first` (appended, then each choice in turn): the argmax on
  // the backend, each step launched before the previous step's id is taken (Model::LaunchArgMax,
  // as the engine decodes). Returns the n chosen ids; n tokens are appended.
  std::vector<int32_t> GreedyDecode(int32_t first, int n);
  void Reset() { n_ = 0; }
  // Applies a LoRA adapter (loaded for this model; nullptr = base) to the following Appends. The
  // adapter must outlive them.
  void set_adapter(const lora::LoraAdapter* adapter) { adapter_ = adapter; }
  int64_t size() const { return n_; }

 private:
  static constexpr int kBlock = 16;
  // The one-token step at position pos.
  ForwardBatch DecodeStep(int64_t pos, int32_t token) const;
  Model& model_;
  std::unique_ptr<kernels::KvCache> cache_;
  std::vector<int32_t> table_;
  int64_t capacity_;
  int64_t n_ = 0;
  const lora::LoraAdapter* adapter_ = nullptr;
};

}  // namespace petrel::model
