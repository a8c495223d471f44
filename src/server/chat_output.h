// Splits a chat answer, as it streams in, into reasoning (`<think>...</think>`), content, and the
// trailing tool-call block (`<tool_call>...`), without ever emitting a partial marker: text that
// could be the start of a marker is held back, like stop strings. Used for both streamed and
// whole answers, so both give the same split.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "server/text_codec.h"

namespace petrel::server {

class ChatOutputSplitter {
 public:
  // `in_reasoning`: the prompt already opened a think block (the answer starts as reasoning).
  // `parse_tools`: split off tool calls (false when the request had no tools or tool_choice none).
  ChatOutputSplitter(ChatMarkers markers, bool in_reasoning, bool parse_tools);

  struct Delta {
    std::string reasoning;
    std::string content;
  };
  Delta Feed(std::string_view text);
  // End of the answer: releases held-back text.
  Delta Finish();

  // The tool-call text (from the first tool_call_start marker on); empty if none was seen.
  const std::string& tool_text() const { return tool_; }
  bool in_tool_call() const { return state_ == State::kTool; }

 private:
  enum class State { kReasoning, kContent, kTool };
  void Process(bool final, Delta* out);

  ChatMarkers m_;
  bool parse_tools_;
  State state_;
  std::string pending_;
  bool content_started_ = false;       // non-whitespace content was emitted (no more <think> then)
  bool strip_newlines_ = false;        // right after </think>: drop the separating newlines
  bool strip_think_newlines_ = false;  // right after <think>: same
  std::string tool_;
};

// Parses Hermes / Qwen style tool calls: one or more `<tool_call>{"name":..,"arguments":{..}}
// </tool_call>` blocks (closing tag optional on the last). Arguments become a JSON string.
Result<std::vector<ToolCall>> ParseHermesToolCalls(std::string_view text);

}  // namespace petrel::server
