#include "server/chat_output.h"

#include <algorithm>

namespace petrel::server {

namespace {
// Length of the longest suffix of `s` that is a proper prefix of `marker`.
size_t PartialSuffix(std::string_view s, std::string_view marker) {
  if (marker.empty()) return 0;
  for (size_t k = std::min(s.size(), marker.size() - 1); k > 0; --k) {
    if (s.substr(s.size() - k) == marker.substr(0, k)) return k;
  }
  return 0;
}
bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
}  // namespace

ChatOutputSplitter::ChatOutputSplitter(ChatMarkers markers, bool in_reasoning, bool parse_tools)
    : m_(std::move(markers)),
      parse_tools_(parse_tools && !m_.tool_call_start.empty()),
      state_(in_reasoning && !m_.think_end.empty() ? State::kReasoning : State::kContent),
      strip_think_newlines_(state_ == State::kReasoning) {}

ChatOutputSplitter::Delta ChatOutputSplitter::Feed(std::string_view text) {
  Delta d;
  pending_.append(text);
  Process(false, &d);
  return d;
}

ChatOutputSplitter::Delta ChatOutputSplitter::Finish() {
  Delta d;
  Process(true, &d);
  return d;
}

void ChatOutputSplitter::Process(bool final, Delta* out) {
  while (!pending_.empty()) {
    if (state_ == State::kTool) {
      tool_ += pending_;
      pending_.clear();
      return;
    }
    if (state_ == State::kReasoning) {
      if (strip_think_newlines_) {
        // Newlines right after <think> are formatting, not reasoning.
        size_t n = 0;
        while (n < pending_.size() && (pending_[n] == '\n' || pending_[n] == '\r')) ++n;
        pending_.erase(0, n);
        if (pending_.empty()) return;
        strip_think_newlines_ = false;
      }
      size_t end = pending_.find(m_.think_end);
      if (end != std::string::npos) {
        out->reasoning += pending_.substr(0, end);
        pending_.erase(0, end + m_.think_end.size());
        state_ = State::kContent;
        strip_newlines_ = true;
        continue;
      }
      size_t hold = final ? 0 : PartialSuffix(pending_, m_.think_end);
      out->reasoning += pending_.substr(0, pending_.size() - hold);
      pending_.erase(0, pending_.size() - hold);
      return;
    }
    // Content.
    if (strip_newlines_) {
      size_t n = 0;
      while (n < pending_.size() && (pending_[n] == '\n' || pending_[n] == '\r')) ++n;
      pending_.erase(0, n);
      if (pending_.empty()) return;
      strip_newlines_ = false;
    }
    // A think block may open only before any real content (models emit it first).
    if (!content_started_ && !m_.think_start.empty()) {
      size_t ws = 0;
      while (ws < pending_.size() && IsSpace(pending_[ws])) ++ws;
      std::string_view rest = std::string_view(pending_).substr(ws);
      if (rest.substr(0, m_.think_start.size()) == m_.think_start) {
        pending_.erase(0, ws + m_.think_start.size());
        state_ = State::kReasoning;
        strip_newlines_ = false;
        strip_think_newlines_ = true;
        continue;
      }
      if (!final && (ws == pending_.size() ||
                     std::string_view(m_.think_start).substr(0, rest.size()) == rest)) {
        return;  // could still become "<think>": wait
      }
    }
    size_t cut = std::string::npos;
    if (parse_tools_) cut = pending_.find(m_.tool_call_start);
    if (cut != std::string::npos) {
      std::string before = pending_.substr(0, cut);
      // Whitespace before a tool call is formatting, not content.
      while (!before.empty() && IsSpace(before.back())) before.pop_back();
      out->content += before;
      content_started_ = true;
      state_ = State::kTool;
      pending_.erase(0, cut);
      continue;
    }
    size_t hold = (final || !parse_tools_) ? 0 : PartialSuffix(pending_, m_.tool_call_start);
    // Whitespace right before a possible tool call is held too: it is dropped if one follows.
    if (!final && parse_tools_) {
      while (hold < pending_.size() && IsSpace(pending_[pending_.size() - hold - 1])) ++hold;
    }
    std::string emit = pending_.substr(0, pending_.size() - hold);
    for (char c : emit) content_started_ = content_started_ || !IsSpace(c);
    out->content += emit;
    pending_.erase(0, pending_.size() - hold);
    return;
  }
}

Result<std::vector<ToolCall>> ParseHermesToolCalls(std::string_view text) {
  const std::string_view kOpen = "<tool_call>", kClose = "</tool_call>";
  std::vector<ToolCall> calls;
  size_t pos = 0;
  while (true) {
    size_t open = text.find(kOpen, pos);
    if (open == std::string_view::npos) break;
    // Only whitespace may sit between blocks.
    for (size_t i = pos; i < open; ++i) {
      if (!IsSpace(text[i])) return InvalidFormat("text between tool calls");
    }
    size_t start = open + kOpen.size();
    size_t close = text.find(kClose, start);
    std::string_view body = text.substr(
        start, close == std::string_view::npos ? std::string_view::npos : close - start);
    auto j = ParseJson(body, "tool call");
    if (!j.ok()) return j.error();
    if (!j->is_object() || !j->contains("name") || !(*j)["name"].is_string()) {
      return InvalidFormat("tool call without a name");
    }
    ToolCall call;
    call.name = (*j)["name"].get<std::string>();
    auto args = j->find("arguments");
    if (args == j->end()) args = j->find("parameters");
    if (args == j->end() || args->is_null()) {
      call.arguments = "{}";
    } else if (args->is_string()) {
      call.arguments = args->get<std::string>();
    } else {
      call.arguments = DumpJson(*args);
    }
    calls.push_back(std::move(call));
    if (close == std::string_view::npos) {
      pos = text.size();
      break;
    }
    pos = close + kClose.size();
  }
  for (size_t i = pos; i < text.size(); ++i) {
    if (!IsSpace(text[i])) return InvalidFormat("text after tool calls");
  }
  if (calls.empty()) return InvalidFormat("no tool call found");
  return calls;
}

}  // namespace petrel::server
