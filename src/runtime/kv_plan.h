// How many KV-cache blocks the engine allocates: a pure function of the sizes, the flags and (on
// a device backend) the device's free memory, so that the arithmetic is unit-tested on the CPU.
//
// Host backends (the CPU): --kv-cache-memory sets the pool exactly; by default every sequence slot
// (--max-num-seqs) gets room for min(max_model_len, 4096) tokens, capped at 1 GiB, but at least one
// sequence of the full max_model_len.
//
// Device backends (CUDA), as vLLM's --gpu-memory-utilization: measured after the weights are
// uploaded and one forward pass of --max-num-batched-tokens has reserved the activations, the pool
// gets   utilization x total - (total - free)   bytes, i.e. the share of the device this process
// may use minus what it (and anything else on the device) uses already; --kv-cache-memory, when
// given, caps it. Errors when not even one block fits, or when the pool cannot hold one sequence
// of max_model_len (lower --max-model-len or give the cache more memory).
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"

namespace petrel::runtime {

struct KvPlanInput {
  int64_t bytes_per_block = 0;   // K + V of all layers for block_size tokens
  int block_size = 16;
  int max_model_len = 0;
  int max_num_seqs = 0;
  int64_t kv_cache_bytes = 0;    // --kv-cache-memory; 0 = not given
  double gpu_memory_utilization = 0.9;
  int64_t device_free_bytes = 0;   // Backend::QueryMemory(); total 0 = a host backend
  int64_t device_total_bytes = 0;
};

struct KvPlan {
  int64_t n_blocks = 0;
  int64_t capacity_tokens = 0;   // n_blocks * block_size
  int64_t bytes = 0;             // n_blocks * bytes_per_block
  int64_t budget_bytes = 0;      // device: what the utilization leaves for the pool (else 0)
  double max_concurrency = 0;    // capacity_tokens / max_model_len
  bool device = false;
  bool capped = false;           // device: --kv-cache-memory was below the budget
};

Result<KvPlan> PlanKvCache(const KvPlanInput& in);

// One line for the start-up log: blocks, tokens, bytes, max concurrency (and the device budget).
std::string DescribeKvPlan(const KvPlan& plan, const KvPlanInput& in);

}  // namespace petrel::runtime
