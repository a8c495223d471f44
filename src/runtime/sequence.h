// One request's state inside the engine (engine thread only).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "model/lora/adapter.h"
#include "runtime/request.h"
#include "runtime/sampler.h"

namespace petrel::runtime {

struct Sequence {
  uint64_t id = 0;
  GenerateRequest req;
  UpdateCallback callback;
  std::vector<int32_t> tokens;         // prompt + generated
  int prompt_len = 0;
  int generated = 0;
  int num_computed = 0;                // tokens whose K/V are in the cache
  std::vector<int32_t> blocks;         // block table (physical block per logical block)
  std::vector<uint64_t> block_hashes;  // hash of each full block published so far
  int cached_prompt_tokens = 0;        // prompt tokens reused from the prefix cache (first admission)
  bool first_admission = true;
  SamplerState sampler;
  std::chrono::steady_clock::time_point arrival;
  // The LoRA adapter this request started with (kept alive here across unload / replace), and the
  // prefix-cache salt: distinct for every adapter load, so blocks computed with other weights under
  // the same name are never reused (base model: hash of "").
  std::shared_ptr<const model::lora::LoraAdapter> adapter;
  uint64_t cache_salt = 0;

  int remaining_to_compute() const { return (int)tokens.size() - num_computed; }
};

}  // namespace petrel::runtime
