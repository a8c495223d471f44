// Chat templates: OpenAI-shaped messages (+ tools) -> prompt string, rendered byte-for-byte as
// transformers' `tokenizer.apply_chat_template(messages, tools=..., tokenize=False,
// add_generation_prompt=..., **kwargs)` does.
//
// Variables the template sees, as in transformers: `messages`, `tools` (None when not given),
// `add_generation_prompt`, the special tokens (`bos_token`, `eos_token`, when set), then the
// caller's kwargs (e.g. `enable_thinking`), which may override any of them.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "template/jinja.h"

namespace petrel::jinja {

struct ApplyOptions {
  bool add_generation_prompt = false;
  // Extra template variables, e.g. {"enable_thinking": false} or {"reasoning_effort": "low"}.
  petrel::Json kwargs = petrel::Json::object();
  // Time seen by strftime_now() (seconds since the epoch, UTC); unset = now, local time. Tests
  // set it so templates that print the date (Llama 3.x, gpt-oss) render reproducibly.
  std::optional<int64_t> now_unix_seconds;
  // vLLM's convention: parse assistant tool_calls[].function.arguments given as a JSON string
  // into an object before rendering. Off by default: transformers passes messages through as
  // given (and the Qwen3 template handles both shapes).
  bool parse_tool_call_arguments = false;
  RenderLimits limits;
};

class ChatTemplate {
 public:
  // Loads the template of a Hugging Face model directory: `chat_template.jinja` when present
  // (preferred, as transformers does), else `chat_template.json`'s "chat_template", else
  // tokenizer_config.json's "chat_template" (a string, or a list of {name, template} where
  // "default" is used, and "tool_use" when tools are given and it exists). bos/eos tokens come
  // from tokenizer_config.json (strings or AddedToken dicts with "content").
  // Errors: kNotFound when the directory has no chat template; kInvalidFormat for malformed
  // JSON or template syntax errors (message with line:column).
  static Result<ChatTemplate> FromModelDir(const std::string& model_dir);
  // One template source; empty bos/eos strings leave those variables undefined.
  static Result<ChatTemplate> FromSource(std::string source, std::string bos_token,
                                         std::string eos_token);

  // Renders a conversation. `messages`: an array of OpenAI-shaped messages (content as a string,
  // null or an array of parts; tool_calls; tool role with tool_call_id; reasoning_content), passed
  // to the template as given. `tools`: an OpenAI tools array, or null. Thread-safe (const).
  // Use the OrderedJson overload when key order matters (it does for `tojson` output, e.g. tool
  // schemas): petrel::Json sorts object keys, so the Json overload renders dict keys sorted.
  Result<std::string> Apply(const petrel::OrderedJson& messages, const petrel::OrderedJson& tools,
                            const ApplyOptions& opts) const;
  Result<std::string> Apply(const petrel::Json& messages, const petrel::Json& tools,
                            const ApplyOptions& opts) const;

  // The template source used when no tools are given (for inspection and tests).
  const std::string& source() const { return sources_.front().second; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

 private:
  // Named templates in tokenizer_config order; a plain string template is named "default".
  std::vector<std::pair<std::string, std::string>> sources_;
  std::vector<Template> templates_;
  std::string bos_token_;
  std::string eos_token_;
};

}  // namespace petrel::jinja
