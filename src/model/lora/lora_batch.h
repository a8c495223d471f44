// Applying LoRA adapters inside one forward step without merging them into the base weights:
//   y[rows of a sequence] += B (A x[rows])      (scale already folded into B by LoadAdapter)
// for every group of rows that shares an adapter. Rows of a sequence are contiguous in the flattened
// batch, and neighbouring sequences with the same adapter form one run, so a batch whose sequences
// are ordered by adapter (the engine does this) costs two small matmuls per adapter per projection
// (MatMul for A x, MatMulAdd for y += B (A x), whose K is the rank). All work goes through the
// Backend interface, so a device backend runs it unchanged.
#pragma once

#include <span>
#include <vector>

#include "kernels/backend.h"
#include "model/lora/adapter.h"

namespace petrel::model::lora {

class LoraBatch {
 public:
  // Groups the batch's rows by adapter. `adapters` is empty or parallel to `seqs` (nullptr = the
  // base model). Returns false (and plans nothing) when no sequence uses an adapter.
  bool Plan(std::span<const kernels::AttentionSeq> seqs, std::span<const LoraAdapter* const> adapters);
  bool empty() const { return runs_.empty(); }

  // y [T, out] += B (A x) over each run whose adapter adapts (layer, t); x [T, in].
  void Apply(kernels::Backend& be, TensorView y, TensorView x, int64_t layer, LoraTarget t);

 private:
  struct Run {
    int64_t row0 = 0, n = 0;
    const LoraAdapter* adapter = nullptr;
  };
  std::vector<Run> runs_;
  int64_t max_rows_ = 0, max_rank_ = 0;
  Tensor tmp_;  // [rows, rank]  A x
};

}  // namespace petrel::model::lora
