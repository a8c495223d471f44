// What the server needs from the tokenizer and the chat template, as one narrow interface.
// The routes depend only on this, so they can be tested with a fake, and the tokenizer and
// template modules can change their APIs without touching the HTTP code. The production
// implementation (hf_text_codec.cc) wraps petrel::tokenizer and petrel::jinja.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"

namespace petrel::server {

// Streaming detokenizer for one sequence: text comes out only once it is complete UTF-8 and
// cannot change with later tokens.
class TextStream {
 public:
  virtual ~TextStream() = default;
  // Adds one generated token; returns the text that became final (often empty or one word).
  virtual std::string Add(int32_t token) = 0;
  // End of the sequence: whatever is still pending (an incomplete character becomes U+FFFD).
  virtual std::string Finish() = 0;
};

struct ToolCall {
  std::string id;  // "call_..."
  std::string name;
  std::string arguments;  // JSON text
};

struct ChatDelta {
  std::string content;
  std::string reasoning;
};

// Splits one chat answer, as it streams in, into reasoning (`<think>...</think>`), content and
// tool calls. Text that may be the start of a marker is held back; tool-call text is never
// streamed but parsed at Finish(). Feeding everything at once gives the same split.
class ChatParser {
 public:
  virtual ~ChatParser() = default;
  virtual ChatDelta Feed(std::string_view text) = 0;
  // End of the answer: releases held-back text; unparseable tool-call text comes back as content.
  virtual ChatDelta Finish() = 0;
  // Parsed calls (complete after Finish()).
  virtual const std::vector<ToolCall>& tool_calls() const = 0;
};

class TextCodec {
 public:
  virtual ~TextCodec() = default;
  // Text -> ids. `add_special_tokens` adds BOS/EOS as the tokenizer's post-processor says.
  // Special-token text in `text` is matched as special tokens (the chat template produced it).
  virtual Result<std::vector<int32_t>> Encode(std::string_view text,
                                              bool add_special_tokens) const = 0;
  // Ids -> text; ids outside the vocabulary are kOutOfRange.
  virtual Result<std::string> Decode(std::span<const int32_t> ids,
                                     bool skip_special_tokens) const = 0;
  // The bytes one token stands for (logprobs "token" field; may be a partial UTF-8 sequence).
  virtual std::string TokenText(int32_t id) const = 0;
  virtual std::unique_ptr<TextStream> NewStream(bool skip_special_tokens) const = 0;
  virtual int vocab_size() const = 0;

  // Renders a chat prompt. `messages`/`tools` are OpenAI shapes, already validated, with the
  // client's key order (templates print tool schemas with tojson, so order matters);
  // `kwargs` are extra template variables (chat_template_kwargs, e.g. enable_thinking).
  virtual Result<std::string> ApplyChatTemplate(const OrderedJson& messages,
                                                const OrderedJson& tools,
                                                bool add_generation_prompt,
                                                const Json& kwargs) const = 0;
  // A parser for one answer to `prompt` (the rendered chat prompt: it tells whether the answer
  // starts inside a think block). `parse_tools`: split off tool calls (request had tools).
  virtual std::unique_ptr<ChatParser> NewChatParser(std::string_view prompt,
                                                    bool parse_tools) const = 0;
};

}  // namespace petrel::server
