// Output parsing: <think> splitting and Hermes tool calls, whole-text and streamed (the split must
// not depend on how the text is chunked).
#include "template/output_parser.h"

#include <gtest/gtest.h>

namespace petrel::jinja {
namespace {

OutputParserOptions Opts(bool starts_in_reasoning = false) {
  OutputParserOptions o;
  o.starts_in_reasoning = starts_in_reasoning;
  o.make_tool_call_id = [](size_t i) { return "call_" + std::to_string(i); };
  return o;
}

// Feeds `text` in chunks of `n` bytes and concatenates the deltas.
ParsedOutput Streamed(std::string_view text, size_t n, const OutputParserOptions& o) {
  auto p = MakeOutputParser(o);
  ParsedOutput out;
  for (size_t i = 0; i < text.size(); i += n) {
    OutputDelta d = p->Feed(text.substr(i, n));
    out.content += d.content;
    out.reasoning_content += d.reasoning_content;
  }
  OutputDelta d = p->Finish();
  out.content += d.content;
  out.reasoning_content += d.reasoning_content;
  out.tool_calls = p->tool_calls();
  out.tool_call_error = p->tool_call_error();
  return out;
}

void ExpectSameAtAllChunkSizes(std::string_view text, const OutputParserOptions& o) {
  const ParsedOutput whole = ParseOutput(text, o);
  for (size_t n = 1; n <= text.size() + 1; ++n) {
    SCOPED_TRACE("chunk size " + std::to_string(n));
    const ParsedOutput s = Streamed(text, n, o);
    EXPECT_EQ(s.content, whole.content);
    EXPECT_EQ(s.reasoning_content, whole.reasoning_content);
    ASSERT_EQ(s.tool_calls.size(), whole.tool_calls.size());
    for (size_t i = 0; i < s.tool_calls.size(); ++i) {
      EXPECT_EQ(s.tool_calls[i].name, whole.tool_calls[i].name);
      EXPECT_EQ(s.tool_calls[i].arguments, whole.tool_calls[i].arguments);
    }
  }
}

TEST(OutputParserTest, PlainContent) {
  const auto r = ParseOutput("Hello, world!", Opts());
  EXPECT_EQ(r.content, "Hello, world!");
  EXPECT_EQ(r.reasoning_content, "");
  EXPECT_TRUE(r.tool_calls.empty());
}

TEST(OutputParserTest, ThinkBlockSplit) {
  const std::string text = "<think>\nLet me add.\n2+2=4\n</think>\n\nThe answer is 4.";
  const auto r = ParseOutput(text, Opts());
  EXPECT_EQ(r.reasoning_content, "Let me add.\n2+2=4");
  EXPECT_EQ(r.content, "The answer is 4.");
  ExpectSameAtAllChunkSizes(text, Opts());
}

TEST(OutputParserTest, EmptyThinkBlock) {
  const auto r = ParseOutput("<think>\n\n</think>\n\nHi", Opts());
  EXPECT_EQ(r.reasoning_content, "");
  EXPECT_EQ(r.content, "Hi");
  ExpectSameAtAllChunkSizes("<think>\n\n</think>\n\nHi", Opts());
}

TEST(OutputParserTest, PromptOpenedThink) {
  // The prompt ended with "<think>\n": output starts inside the reasoning.
  const std::string text = "reasoning here\n</think>\n\nfinal";
  const auto r = ParseOutput(text, Opts(true));
  EXPECT_EQ(r.reasoning_content, "reasoning here");
  EXPECT_EQ(r.content, "final");
  ExpectSameAtAllChunkSizes(text, Opts(true));
}

TEST(OutputParserTest, UnclosedThinkIsReasoning) {
  const auto r = ParseOutput("<think>\nstill thinking", Opts());
  EXPECT_EQ(r.reasoning_content, "still thinking");
  EXPECT_EQ(r.content, "");
}

TEST(OutputParserTest, ThinkNotAtStartIsContent) {
  const auto r = ParseOutput("Answer: use <think> tags", Opts());
  EXPECT_EQ(r.content, "Answer: use <think> tags");
  EXPECT_EQ(r.reasoning_content, "");
}

TEST(OutputParserTest, ReasoningDisabled) {
  OutputParserOptions o = Opts();
  o.reasoning = false;
  const auto r = ParseOutput("<think>x</think>y", o);
  EXPECT_EQ(r.content, "<think>x</think>y");
}

TEST(OutputParserTest, HermesToolCall) {
  const std::string text =
      "<think>\nneed weather\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
      "{\"city\": \"Paris\", \"days\": 2}}\n</tool_call>";
  const auto r = ParseOutput(text, Opts());
  EXPECT_EQ(r.reasoning_content, "need weather");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].id, "call_0");
  EXPECT_EQ(r.tool_calls[0].type, "function");
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, "{\"city\": \"Paris\", \"days\": 2}");
  ExpectSameAtAllChunkSizes(text, Opts());
}

TEST(OutputParserTest, ContentThenParallelToolCalls) {
  const std::string text =
      "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": \"é\"}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"y\\\": 1}\"}\n</tool_call>";
  const auto r = ParseOutput(text, Opts());
  EXPECT_EQ(r.content, "Let me check.\n");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].name, "a");
  EXPECT_EQ(r.tool_calls[0].arguments, "{\"x\": \"é\"}");
  EXPECT_EQ(r.tool_calls[1].name, "b");
  EXPECT_EQ(r.tool_calls[1].arguments, "{\"y\": 1}");  // string arguments pass through
  EXPECT_EQ(r.tool_calls[1].id, "call_1");
  ExpectSameAtAllChunkSizes(text, Opts());
}

TEST(OutputParserTest, UnclosedLastToolCall) {
  const auto r = ParseOutput("<tool_call>\n{\"name\": \"f\", \"arguments\": {}}", Opts());
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments, "{}");
}

TEST(OutputParserTest, MalformedToolCallBecomesContent) {
  const std::string text = "ok <tool_call>{not json}</tool_call>";
  const auto r = ParseOutput(text, Opts());
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_FALSE(r.tool_call_error.empty());
  EXPECT_EQ(r.content, text);
  ExpectSameAtAllChunkSizes(text, Opts());
}

TEST(OutputParserTest, StreamingHoldsBackPartialMarkers) {
  auto p = MakeOutputParser(Opts());
  OutputDelta d = p->Feed("Hello <tool_");
  EXPECT_EQ(d.content, "Hello ");  // "<tool_" might start a tool call
  EXPECT_FALSE(p->in_tool_call());
  d = p->Feed("call>{\"name\": \"f\"}");
  EXPECT_EQ(d.content, "");
  EXPECT_TRUE(p->in_tool_call());
  d = p->Finish();
  ASSERT_EQ(p->tool_calls().size(), 1u);
  EXPECT_EQ(p->tool_calls()[0].name, "f");
}

TEST(OutputParserTest, StreamingReasoningDeltas) {
  auto p = MakeOutputParser(Opts());
  EXPECT_EQ(p->Feed("<thi").reasoning_content, "");
  OutputDelta d = p->Feed("nk>\nstep one\n");
  EXPECT_EQ(d.reasoning_content, "step one");  // trailing newline held (may precede </think>)
  d = p->Feed("step two\n</th");
  EXPECT_EQ(d.reasoning_content, "\nstep two");
  d = p->Feed("ink>\n\nDone");
  EXPECT_EQ(d.reasoning_content, "");
  EXPECT_EQ(d.content, "Done");
}

TEST(OutputParserTest, ToolParsingDisabled) {
  OutputParserOptions o = Opts();
  o.tool_calls = ToolCallFormat::kNone;
  const auto r = ParseOutput("<tool_call>{\"name\": \"f\"}</tool_call>", o);
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, "<tool_call>{\"name\": \"f\"}</tool_call>");
}

TEST(OutputParserTest, PromptOpensReasoning) {
  EXPECT_TRUE(PromptOpensReasoning("<|im_start|>assistant\n<think>\n"));
  EXPECT_FALSE(PromptOpensReasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_FALSE(PromptOpensReasoning("<|im_start|>assistant\n"));
}

TEST(OutputParserTest, RandomIdsAreUnique) {
  OutputParserOptions o;  // default id generator
  const auto r = ParseOutput(
      "<tool_call>{\"name\": \"a\"}</tool_call><tool_call>{\"name\": \"b\"}</tool_call>", o);
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].id.rfind("call_", 0), 0u);
  EXPECT_EQ(r.tool_calls[0].id.size(), 29u);
  EXPECT_NE(r.tool_calls[0].id, r.tool_calls[1].id);
}

}  // namespace
}  // namespace petrel::jinja
