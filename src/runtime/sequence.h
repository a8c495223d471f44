// One request's state inside the engine (engine thread only).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

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

  int remaining_to_compute() const { return (int)tokens.size() - num_computed; }
};

}  // namespace petrel::runtime
