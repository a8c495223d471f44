// OpenAI / vLLM request bodies as plain structs, parsed and validated from JSON without a socket.
// Parsing never throws and never trusts a type: every field is checked, and a failure reports the
// offending field as `param` so the route can answer 400 with an OpenAI-shaped error. Unknown
// fields are ignored (clients send many we do not use). Checks that need the model (vocabulary
// size, context length, served name) happen in the routes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "runtime/request.h"

namespace petrel::server {

// Limits on request fields (protect the engine from silly values).
inline constexpr int kMaxN = 128;           // choices per request
inline constexpr int kMaxTopLogprobs = 20;  // as OpenAI
inline constexpr int kMaxStopStrings = 32;
inline constexpr float kMaxLogitBias = 100.0f;

// Sampling and output controls shared by chat and text completions.
struct GenerationOptions {
  runtime::SamplingParams sampling;
  std::optional<int> max_tokens;  // unset: up to the context limit
  int n = 1;
  std::vector<std::string> stop;  // stop strings (never returned in the output)
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;
  int top_logprobs = 0;  // with logprobs: alternatives per position
  bool skip_special_tokens = true;
  // Which sampling fields the client set; the others take the model's generation_config.json
  // defaults (as vLLM does), which the parser does not know.
  bool has_temperature = false, has_top_p = false, has_top_k = false, has_min_p = false,
       has_repetition_penalty = false;
};

struct ChatCompletionRequest {
  std::string model;  // "" = not given
  Json messages;      // array of message objects, shapes checked
  Json tools;         // null or array of tool objects
  Json tool_choice;   // null, "none", "auto", "required" or {"type":"function",...}
  Json chat_template_kwargs = Json::object();
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  GenerationOptions gen;
};

struct CompletionRequest {
  std::string model;
  // Exactly one of the two is non-empty: text prompts or token-id prompts. Several prompts in one
  // request give prompts.size() * n choices, indexed prompt-major.
  std::vector<std::string> text_prompts;
  std::vector<std::vector<int32_t>> token_prompts;
  bool echo = false;
  GenerationOptions gen;
};

// vLLM's /tokenize: either `prompt` (text) or `messages` (chat, rendered with the template).
struct TokenizeRequest {
  std::string model;
  std::optional<std::string> prompt;
  Json messages;  // null when `prompt` is used
  bool add_special_tokens = true;
  bool add_generation_prompt = true;
  Json chat_template_kwargs = Json::object();
  bool return_token_strs = false;
};

struct DetokenizeRequest {
  std::string model;
  std::vector<int32_t> tokens;
};

// The seed API of the FastAPI servers petrel replaces: {"prompt","max_tokens"}.
struct SimpleGenerateRequest {
  std::string prompt;
  int max_tokens = 16;
};

// Parsers. On failure the returned Error is kInvalidArgument and `*param` names the field
// (dotted path, e.g. "messages.1.role"); `param` may be null.
Result<ChatCompletionRequest> ParseChatCompletionRequest(const Json& body, std::string* param);
Result<CompletionRequest> ParseCompletionRequest(const Json& body, std::string* param);
Result<TokenizeRequest> ParseTokenizeRequest(const Json& body, std::string* param);
Result<DetokenizeRequest> ParseDetokenizeRequest(const Json& body, std::string* param);
Result<SimpleGenerateRequest> ParseSimpleGenerateRequest(const Json& body, std::string* param);

// Parses a request body into JSON; bad JSON and a non-object top level are kInvalidArgument.
Result<Json> ParseBody(std::string_view body);

// ---- Response pieces -------------------------------------------------------------------------

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;
};
Json UsageJson(const Usage& u);

// One generated position with its alternatives, already turned into text.
struct TokenLogprob {
  std::string token;  // the token's text (may be a partial UTF-8 sequence)
  float logprob = 0.0f;
  struct Alt {
    std::string token;
    float logprob;
  };
  std::vector<Alt> top;
};
// Chat format: {"content":[{"token","logprob","bytes","top_logprobs":[...]}]}.
Json ChatLogprobsJson(const std::vector<TokenLogprob>& entries);
// Completions format: {"tokens","token_logprobs","top_logprobs","text_offset"}; `text_offset`
// starts at `offset0` (the length of the text before these tokens in the choice).
Json CompletionLogprobsJson(const std::vector<TokenLogprob>& entries, size_t offset0);

// A tool call as OpenAI returns it: {"id","type":"function","function":{"name","arguments"}};
// `arguments` is a JSON string.
Json ToolCallJson(const std::string& id, const std::string& name, const std::string& arguments);

}  // namespace petrel::server
