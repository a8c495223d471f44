// Output parsing (see output_parser.h): a small state machine over the decoded text.
//
//   kStart      before any non-space output; a leading <think> opens reasoning
//   kReasoning  inside <think> ... </think>
//   kContent    ordinary answer text; <tool_call> switches to kTool (Hermes format)
//   kTool       everything is held until Finish(), then parsed into ToolCalls
//
// Whitespace conventions follow the Qwen3 chat template, which re-renders history with
// `reasoning.strip('\n')` and `content.lstrip('\n')`: newlines right after <think> and right
// before </think> are not part of reasoning_content, and newlines after </think> are not content.
#include "template/output_parser.h"

#include <random>

#include "core/json_util.h"
#include "template/value.h"

namespace petrel::jinja {

namespace {

// Length of the longest suffix of `buf` that is a proper prefix of `marker` (text to hold back).
size_t PartialMarkerSuffix(std::string_view buf, std::string_view marker) {
  const size_t max = std::min(buf.size(), marker.size() - 1);
  for (size_t n = max; n > 0; --n) {
    if (buf.substr(buf.size() - n) == marker.substr(0, n)) return n;
  }
  return 0;
}

bool AllSpace(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

std::string RandomCallId(size_t) {
  static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id.push_back(kAlnum[rng() % (sizeof(kAlnum) - 1)]);
  return id;
}

class StreamingParser final : public OutputParser {
 public:
  explicit StreamingParser(OutputParserOptions opts) : o_(std::move(opts)) {
    if (!o_.make_tool_call_id) o_.make_tool_call_id = RandomCallId;
    state_ = !o_.reasoning            ? State::kContent
             : o_.starts_in_reasoning ? State::kReasoning
                                      : State::kStart;
    strip_leading_newlines_ = state_ == State::kReasoning;
  }

  OutputDelta Feed(std::string_view text) override {
    buf_.append(text);
    OutputDelta out;
    Process(/*final=*/false, out);
    return out;
  }

  OutputDelta Finish() override {
    OutputDelta out;
    Process(/*final=*/true, out);
    if (state_ == State::kTool) {
      auto calls = ParseHermesToolCalls(tool_text_, o_.make_tool_call_id);
      if (calls.ok()) {
        calls_ = std::move(calls).value();
      } else {
        error_ = calls.error().message;
        out.content += tool_text_;  // unparseable: give the text back as content
      }
    }
    return out;
  }

  const std::vector<ToolCall>& tool_calls() const override { return calls_; }
  const std::string& tool_call_error() const override { return error_; }
  bool in_tool_call() const override { return state_ == State::kTool; }

 private:
  enum class State { kStart, kReasoning, kContent, kTool };

  // Moves as much of buf_ as is certain into `out`, switching states at markers.
  void Process(bool final, OutputDelta& out) {
    while (true) {
      switch (state_) {
        case State::kStart: {
          // Skip nothing yet: leading whitespace stays pending until we know whether <think>
          // follows (then it is dropped) or content starts (then it is content).
          const size_t first = buf_.find_first_not_of(" \t\r\n");
          if (first == std::string::npos) {
            if (!final) return;
            state_ = State::kContent;
            continue;
          }
          const std::string_view rest = std::string_view(buf_).substr(first);
          if (rest.substr(0, o_.think_start.size()) == o_.think_start) {
            buf_.erase(0, first + o_.think_start.size());
            state_ = State::kReasoning;
            strip_leading_newlines_ = true;
            continue;
          }
          if (!final && rest.size() < o_.think_start.size() &&
              o_.think_start.compare(0, rest.size(), rest) == 0) {
            return;  // could still become <think>
          }
          state_ = State::kContent;
          continue;
        }
        case State::kReasoning: {
          if (strip_leading_newlines_) {
            const size_t n = buf_.find_first_not_of('\n');
            buf_.erase(0, n == std::string::npos ? buf_.size() : n);
            if (buf_.empty()) return;
            strip_leading_newlines_ = false;
          }
          const size_t end = buf_.find(o_.think_end);
          if (end != std::string::npos) {
            std::string_view r = std::string_view(buf_).substr(0, end);
            while (!r.empty() && r.back() == '\n') r.remove_suffix(1);
            if (!r.empty()) out.reasoning_content += held_newlines_;  // else they precede </think>
            out.reasoning_content.append(r);
            held_newlines_.clear();
            buf_.erase(0, end + o_.think_end.size());
            state_ = State::kContent;
            strip_leading_newlines_ = true;
            continue;
          }
          // Emit all but a possible partial "</think>" and trailing newlines (which belong to
          // the closing tag if it follows).
          size_t keep = final ? 0 : PartialMarkerSuffix(buf_, o_.think_end);
          size_t emit = buf_.size() - keep;
          size_t nl = emit;
          while (nl > 0 && buf_[nl - 1] == '\n') --nl;
          if (nl > 0) {
            out.reasoning_content += held_newlines_;
            held_newlines_.clear();
          }
          out.reasoning_content.append(buf_, 0, nl);
          if (!final) held_newlines_.append(buf_, nl, emit - nl);
          buf_.erase(0, emit);
          return;
        }
        case State::kContent: {
          if (strip_leading_newlines_) {
            const size_t n = buf_.find_first_not_of('\n');
            buf_.erase(0, n == std::string::npos ? buf_.size() : n);
            if (buf_.empty()) return;
            strip_leading_newlines_ = false;
          }
          const std::string kToolStart = "<tool_call>";
          const bool tools = o_.tool_calls == ToolCallFormat::kHermes;
          if (tools) {
            const size_t start = buf_.find(kToolStart);
            if (start != std::string::npos) {
              out.content.append(buf_, 0, start);
              tool_text_ = buf_.substr(start);
              buf_.clear();
              state_ = State::kTool;
              continue;
            }
          }
          const size_t keep = (tools && !final) ? PartialMarkerSuffix(buf_, kToolStart) : 0;
          out.content.append(buf_, 0, buf_.size() - keep);
          buf_.erase(0, buf_.size() - keep);
          return;
        }
        case State::kTool:
          tool_text_ += buf_;
          buf_.clear();
          return;
      }
    }
  }

  OutputParserOptions o_;
  State state_;
  std::string buf_;            // text not yet classified
  std::string held_newlines_;  // reasoning newlines that may precede </think>
  bool strip_leading_newlines_ = false;
  std::string tool_text_;
  std::vector<ToolCall> calls_;
  std::string error_;
};

}  // namespace

std::unique_ptr<OutputParser> MakeOutputParser(const OutputParserOptions& opts) {
  return std::make_unique<StreamingParser>(opts);
}

ParsedOutput ParseOutput(std::string_view text, const OutputParserOptions& opts) {
  auto p = MakeOutputParser(opts);
  ParsedOutput out;
  OutputDelta a = p->Feed(text);
  OutputDelta b = p->Finish();
  out.content = a.content + b.content;
  out.reasoning_content = a.reasoning_content + b.reasoning_content;
  out.tool_calls = p->tool_calls();
  out.tool_call_error = p->tool_call_error();
  return out;
}

bool PromptOpensReasoning(std::string_view prompt, std::string_view think_start,
                          std::string_view think_end) {
  const size_t open = prompt.rfind(think_start);
  if (open == std::string_view::npos) return false;
  const std::string_view after = prompt.substr(open + think_start.size());
  return after.find(think_end) == std::string_view::npos && AllSpace(after);
}

Result<std::vector<ToolCall>> ParseHermesToolCalls(
    std::string_view text, const std::function<std::string(size_t)>& make_id) {
  static constexpr std::string_view kStart = "<tool_call>";
  static constexpr std::string_view kEnd = "</tool_call>";
  std::vector<ToolCall> calls;
  size_t pos = 0;
  while (true) {
    const size_t start = text.find(kStart, pos);
    if (start == std::string_view::npos) {
      if (!AllSpace(text.substr(pos))) {
        return InvalidFormat("unexpected text outside <tool_call> blocks");
      }
      break;
    }
    if (!AllSpace(text.substr(pos, start - pos))) {
      return InvalidFormat("unexpected text between <tool_call> blocks");
    }
    const size_t body = start + kStart.size();
    size_t end = text.find(kEnd, body);
    const bool closed = end != std::string_view::npos;
    if (!closed) end = text.size();  // the last block may be cut off by a stop/eos
    const std::string_view json_text = text.substr(body, end - body);
    PETREL_TRY(petrel::OrderedJson j,
               ParseOrderedJson(json_text, "tool call " + std::to_string(calls.size())));
    if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) {
      return InvalidFormat("tool call ", calls.size(),
                           ": expected {\"name\": ..., \"arguments\": ...}");
    }
    ToolCall call;
    call.id = make_id ? make_id(calls.size()) : RandomCallId(calls.size());
    call.name = j["name"].get<std::string>();
    const auto args = j.contains("arguments") ? j["arguments"] : petrel::OrderedJson::object();
    if (args.is_string()) {
      call.arguments = args.get<std::string>();
    } else {
      try {
        call.arguments = DumpJsonValue(Value::FromJson(args), JsonDumpOptions{});
      } catch (const TemplateException& e) {
        return InvalidFormat("tool call ", calls.size(), ": ", e.message);
      }
    }
    calls.push_back(std::move(call));
    pos = closed ? end + kEnd.size() : text.size();
  }
  if (calls.empty()) return InvalidFormat("no <tool_call> block found");
  return calls;
}

}  // namespace petrel::jinja
