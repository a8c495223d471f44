// Turns one row of logits into a token: logit bias, repetition / presence / frequency penalties,
// temperature, top-k, top-p, min-p, then a draw from a per-request RNG (greedy at temperature 0).
// Logprobs are log-softmax of the raw model logits (as vLLM reports them by default).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "runtime/request.h"

namespace petrel::runtime {

// Per-sequence sampling state: token history counts and the RNG.
struct SamplerState {
  std::mt19937_64 rng;
  std::unordered_map<int32_t, int> output_counts;  // generated tokens -> count
  std::vector<uint8_t> seen;                       // prompt + output tokens (repetition penalty)
  uint64_t device_seed = 0;  // key of the device sampler's stream (Backend::SampleRows)

  void Init(const SamplingParams& p, std::span<const int32_t> prompt, int64_t vocab,
            uint64_t fallback_seed);
  void Observe(int32_t token);  // record a generated token
};

// Validates ranges (temperature >= 0, 0 < top_p <= 1, ...); errors name the field.
Status ValidateSampling(const SamplingParams& p, int64_t vocab);

// Whether a request needs the host sampler: logit bias, penalties (they need the token history),
// or more top logprobs than the device op returns. Others can be sampled on a device backend.
bool NeedsHostSampling(const SamplingParams& p, int top_logprobs);

// Samples from `logits` [vocab] (modified in place as scratch). Fills `out` (token, logprobs).
void Sample(std::span<float> logits, const SamplingParams& p, SamplerState& state, int top_logprobs,
            TokenOutput& out);

}  // namespace petrel::runtime
