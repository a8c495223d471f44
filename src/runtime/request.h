// What a client asks the engine for, and what the engine reports back, in token ids.
// Text (detokenization, stop strings, chat templates) is the server's business; the engine sees
// only ids. See engine.h for the threading contract.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace petrel::runtime {

// Sampling controls, named and defaulted as in the OpenAI / vLLM APIs. Defaults are neutral.
struct SamplingParams {
  float temperature = 1.0f;        // 0 = greedy
  float top_p = 1.0f;              // nucleus mass in (0, 1]
  int top_k = 0;                   // 0 or -1 = disabled
  float min_p = 0.0f;              // keep tokens with p >= min_p * p_max
  float presence_penalty = 0.0f;   // OpenAI: subtract once if the token appeared in the output
  float frequency_penalty = 0.0f;  // OpenAI: subtract count * penalty (output tokens)
  float repetition_penalty = 1.0f; // HF/CTRL: divide positive / multiply negative logits of seen
                                   // tokens (prompt + output)
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the raw logits
  std::optional<uint64_t> seed;    // same seed + same request = same output
};

enum class FinishReason { kNone, kStop, kLength, kAbort, kError };
const char* FinishReasonName(FinishReason r);  // "stop", "length", "abort", "error"

struct GenerateRequest {
  std::vector<int32_t> prompt;          // token ids, already templated and tokenized
  SamplingParams sampling;
  int max_new_tokens = 16;
  std::vector<int32_t> stop_token_ids;  // extra ids that end generation (finish_reason stop)
  std::vector<int32_t> eos_token_ids;   // model EOS ids; ignored when ignore_eos
  bool ignore_eos = false;
  int top_logprobs = -1;                // -1: no logprobs; 0: logprob of the sampled token; k: + top k
  std::string adapter;                  // LoRA adapter name; "" = base model
};

struct TopLogprob {
  int32_t token;
  float logprob;
};

struct TokenOutput {
  int32_t token;
  float logprob = 0.0f;             // log-softmax of the raw logits (only when top_logprobs >= 0)
  std::vector<TopLogprob> top;      // top_logprobs entries, best first
};

// One report for one request after an engine step. `tokens` are the new tokens of this step
// (usually one). The last update of a request has finished = true and a reason.
struct RequestUpdate {
  uint64_t request_id = 0;
  std::vector<TokenOutput> tokens;
  bool finished = false;
  FinishReason reason = FinishReason::kNone;
  std::string error;                // set when reason == kError
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0;     // prompt tokens served from the prefix cache
  int generated_tokens = 0;         // total so far
};

// Called on the engine thread; must be quick and must not call back into the engine except
// Engine::Abort. The server hands the update to its own executor.
using UpdateCallback = std::function<void(RequestUpdate)>;

}  // namespace petrel::runtime
