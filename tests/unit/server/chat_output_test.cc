#include "server/chat_output.h"

#include <gtest/gtest.h>

namespace petrel::server {
namespace {

struct Split {
  std::string reasoning, content, tools;
};

Split SplitAll(const std::vector<std::string>& pieces, bool in_reasoning, bool tools) {
  ChatOutputSplitter s(ChatMarkers{}, in_reasoning, tools);
  Split out;
  for (const auto& p : pieces) {
    auto d = s.Feed(p);
    out.reasoning += d.reasoning;
    out.content += d.content;
  }
  auto d = s.Finish();
  out.reasoning += d.reasoning;
  out.content += d.content;
  out.tools = s.tool_text();
  return out;
}

std::vector<std::string> Chars(const std::string& s) {
  std::vector<std::string> v;
  for (char c : s) v.push_back(std::string(1, c));
  return v;
}

TEST(ChatOutputTest, ThinkBlockSplit) {
  const std::string text = "<think>\nstep 1\n</think>\n\nThe answer.";
  for (const auto& pieces : {std::vector<std::string>{text}, Chars(text)}) {
    Split s = SplitAll(pieces, false, false);
    EXPECT_EQ(s.reasoning, "step 1\n");
    EXPECT_EQ(s.content, "The answer.");
  }
}

TEST(ChatOutputTest, PromptOpenedThink) {
  Split s = SplitAll(Chars("plan</think>\n\nok"), true, false);
  EXPECT_EQ(s.reasoning, "plan");
  EXPECT_EQ(s.content, "ok");
}

TEST(ChatOutputTest, NoMarkersIsContent) {
  Split s = SplitAll(Chars("just <b>text</b> <thin"), false, true);
  EXPECT_EQ(s.content, "just <b>text</b> <thin");
  EXPECT_EQ(s.reasoning, "");
}

TEST(ChatOutputTest, ThinkOnlyAtStart) {
  Split s = SplitAll({"hello <think>x</think>"}, false, false);
  EXPECT_EQ(s.content, "hello <think>x</think>");
}

TEST(ChatOutputTest, ToolCallSplit) {
  const std::string text =
      "Sure.\n<tool_call>\n{\"name\": \"get\", \"arguments\": {\"a\": 1}}\n</tool_call>";
  for (const auto& pieces : {std::vector<std::string>{text}, Chars(text)}) {
    Split s = SplitAll(pieces, false, true);
    EXPECT_EQ(s.content, "Sure.");
    ASSERT_EQ(s.tools.rfind("<tool_call>", 0), 0u);
    auto calls = ParseHermesToolCalls(s.tools);
    ASSERT_TRUE(calls.ok()) << calls.error().message;
    ASSERT_EQ(calls->size(), 1u);
    EXPECT_EQ((*calls)[0].name, "get");
    EXPECT_EQ((*calls)[0].arguments, "{\"a\":1}");
  }
}

TEST(HermesToolCallsTest, SeveralAndErrors) {
  auto two = ParseHermesToolCalls(
      "<tool_call>{\"name\":\"a\",\"arguments\":\"{}\"}</tool_call>\n<tool_call>{\"name\":\"b\"}");
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].arguments, "{}");
  EXPECT_EQ((*two)[1].arguments, "{}");
  EXPECT_FALSE(ParseHermesToolCalls("<tool_call>{bad json</tool_call>").ok());
  EXPECT_FALSE(ParseHermesToolCalls("<tool_call>{\"x\":1}</tool_call>").ok());
  EXPECT_FALSE(ParseHermesToolCalls("<tool_call>{\"name\":\"a\"}</tool_call> trailing").ok());
  EXPECT_FALSE(ParseHermesToolCalls("no calls").ok());
}

}  // namespace
}  // namespace petrel::server
