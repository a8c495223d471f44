// Parsing of chat model output into OpenAI message fields: `reasoning_content` (the text of a
// `<think>...</think>` block, Qwen3 / DeepSeek-R1 style), `content`, and `tool_calls`.
//
// One interface serves whole texts and streams: Feed() takes text deltas as they are decoded and
// returns the content / reasoning deltas that are certain; text that may be the beginning of a
// marker ("<thi", "</think", "<tool_c") is held back until the next Feed() or Finish(). Tool-call
// text is never streamed: it is held and returned as parsed calls by Finish(). Parse() is exactly
// Feed(all) + Finish(), so streamed and non-streamed answers split identically.
//
// Families: Hermes/Qwen (`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`) now; Llama-3
// JSON (`{"name": ..., "parameters": ...}`) and Mistral (`[TOOL_CALLS][...]`) fit as further
// ToolCallFormat values with their own extractor (see MakeOutputParser in output_parser.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace petrel::jinja {

struct ToolCall {
  std::string id;  // "call_..." (unique per call)
  std::string type = "function";
  std::string name;       // function.name
  std::string arguments;  // function.arguments: a JSON object as a string (OpenAI shape)
};

struct OutputDelta {
  std::string content;
  std::string reasoning_content;
  bool empty() const { return content.empty() && reasoning_content.empty(); }
};

struct ParsedOutput {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCall> tool_calls;
  // Set when tool-call text was found but could not be parsed; its raw text was then returned
  // as content (like vLLM's Hermes parser), so nothing is lost.
  std::string tool_call_error;
};

enum class ToolCallFormat {
  kNone,    // no tool-call parsing: everything after reasoning is content
  kHermes,  // Qwen2.5/Qwen3, Hermes: <tool_call>{json}</tool_call> blocks
};

struct OutputParserOptions {
  ToolCallFormat tool_calls = ToolCallFormat::kHermes;
  // Split <think>...</think> into reasoning_content.
  bool reasoning = true;
  // The prompt already opened the think block (e.g. a template whose generation prompt ends with
  // "<think>\n"): the output starts as reasoning until "</think>".
  bool starts_in_reasoning = false;
  std::string think_start = "<think>";
  std::string think_end = "</think>";
  // Tool-call ids; default: "call_" + 24 random alphanumerics.
  std::function<std::string(size_t index)> make_tool_call_id;
};

class OutputParser {
 public:
  virtual ~OutputParser() = default;
  // Consumes the next piece of model output; returns what can be emitted now.
  virtual OutputDelta Feed(std::string_view text) = 0;
  // End of output: releases held-back text and parses tool calls (see tool_calls()).
  virtual OutputDelta Finish() = 0;
  // Parsed calls; complete after Finish().
  virtual const std::vector<ToolCall>& tool_calls() const = 0;
  virtual const std::string& tool_call_error() const = 0;
  // True while inside a tool-call region (the server may stop streaming content then).
  virtual bool in_tool_call() const = 0;
};

std::unique_ptr<OutputParser> MakeOutputParser(const OutputParserOptions& opts);

// Whole-text convenience: Feed(text) + Finish().
ParsedOutput ParseOutput(std::string_view text, const OutputParserOptions& opts);

// Whether a rendered prompt leaves a think block open at its end (Qwen3 with enable_thinking
// after some fine-tunes, DeepSeek-R1 templates that end the prompt with "<think>\n").
bool PromptOpensReasoning(std::string_view prompt, std::string_view think_start = "<think>",
                          std::string_view think_end = "</think>");

// Parses Hermes tool-call blocks from `text` (the region starting at the first <tool_call>).
// Errors name the offending block. Arguments are re-serialized as json.dumps does
// (", " and ": " separators, non-ASCII kept), matching vLLM's Hermes parser.
Result<std::vector<ToolCall>> ParseHermesToolCalls(
    std::string_view text, const std::function<std::string(size_t)>& make_id);

}  // namespace petrel::jinja
