// Engine-level tests: error positions, sandbox limits, ChatTemplate loading and options.
// (Rendering semantics are covered by the jinja2 differential cases in jinja_diff_test.cc.)
#include "template/jinja.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "template/chat_template.h"

namespace petrel::jinja {
namespace {

Result<std::string> Render(std::string_view src,
                           const petrel::OrderedJson& vars = petrel::OrderedJson::object(),
                           RenderOptions opts = {}) {
  PETREL_TRY(Template t, Template::Parse(src));
  return t.Render(vars, opts);
}

// Asserts failure with `code` and a message starting with "LINE:COL: " and containing `needle`.
void ExpectError(const Result<std::string>& r, ErrorCode code, const std::string& where,
                 const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "rendered: " << *r;
  EXPECT_EQ(r.error().code, code) << r.error().ToString();
  EXPECT_EQ(r.error().message.rfind(where, 0), 0u) << r.error().message;
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

TEST(JinjaErrorTest, SyntaxErrorsCarryLineAndColumn) {
  ExpectError(Render("ok\n{% if %}"), ErrorCode::kInvalidFormat, "2:7: ", "unexpected");
  ExpectError(Render("{% for x in y %}\nno end"), ErrorCode::kInvalidFormat, "", "endfor");
  ExpectError(Render("a\nb {{ 1 + }}"), ErrorCode::kInvalidFormat, "2:10: ", "unexpected");
  ExpectError(Render("{{ 'abc }}"), ErrorCode::kInvalidFormat, "1:4: ", "unterminated string");
  ExpectError(Render("x\n  {# never closed"), ErrorCode::kInvalidFormat, "2:3: ", "comment");
  ExpectError(Render("{% include 'x' %}"), ErrorCode::kInvalidFormat,
              "1:4: ", "unknown or unsupported tag");
  ExpectError(Render("{{ x ? 1 }}"), ErrorCode::kInvalidFormat, "1:6: ", "unexpected character");
  ExpectError(Render("{% break %}"), ErrorCode::kInvalidFormat, "1:4: ", "outside of a loop");
}

TEST(JinjaErrorTest, RuntimeErrorsCarryPosition) {
  ExpectError(Render("line1\n  {{ foo.bar }}"), ErrorCode::kInvalidArgument,
              "2:9: ", "'foo' is undefined");
  ExpectError(Render("{{ m.missing.x }}", {{"m", petrel::OrderedJson::object()}}),
              ErrorCode::kInvalidArgument, "1:", "'dict object' has no attribute 'missing'");
  ExpectError(Render("\n\n{{ raise_exception('Roles must alternate') }}"),
              ErrorCode::kInvalidArgument, "3:", "raise_exception: Roles must alternate");
  ExpectError(Render("{{ 1 + 'a' }}"), ErrorCode::kInvalidArgument, "1:6: ", "unsupported operand");
  ExpectError(Render("{{ [] | nope }}"), ErrorCode::kInvalidArgument,
              "1:", "no filter named 'nope'");
  ExpectError(Render("{% set x = [1].append(2) %}"), ErrorCode::kInvalidArgument, "1:", "unsafe");
}

TEST(JinjaLimitTest, StepLimit) {
  RenderOptions o;
  o.limits.max_steps = 100'000;
  ExpectError(
      Render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", {},
             o),
      ErrorCode::kResourceExhausted, "1:", "step limit");
}

TEST(JinjaLimitTest, OutputLimit) {
  RenderOptions o;
  o.limits.max_output_bytes = 1000;
  ExpectError(Render("{% for i in range(1000) %}xxxxxxxxxx{% endfor %}", {}, o),
              ErrorCode::kResourceExhausted, "1:", "size limit");
  ExpectError(Render("{{ 'x' * 100000 }}", {}, o), ErrorCode::kResourceExhausted,
              "1:", "size limit");
  ExpectError(
      Render("{% set ns = namespace(s='ab') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}"
             "{% endfor %}",
             {}, o),
      ErrorCode::kResourceExhausted, "1:", "size limit");
}

TEST(JinjaLimitTest, RecursionLimit) {
  ExpectError(Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
              ErrorCode::kResourceExhausted, "1:", "call depth");
}

TEST(JinjaLimitTest, RangeAndNestingLimits) {
  ExpectError(Render("{{ range(10000000) | length }}"), ErrorCode::kResourceExhausted,
              "1:", "Range too big");
  const std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  ExpectError(Render(deep), ErrorCode::kInvalidFormat, "1:", "nesting too deep");
  const std::string deep_if = [] {
    std::string s;
    for (int i = 0; i < 1000; ++i) s += "{% if true %}";
    return s;
  }();
  ExpectError(Render(deep_if), ErrorCode::kInvalidFormat, "1:", "nesting too deep");
}

TEST(JinjaTest, StrftimeNowUsesInjectedClock) {
  RenderOptions o;
  o.now_unix_seconds = 1735734300;  // 2025-01-01 12:25:00 UTC
  auto r = Render("{{ strftime_now('%Y-%m-%d %H:%M') }} {{ strftime_now('%d %b %Y') }}", {}, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, "2025-01-01 12:25 01 Jan 2025");
}

TEST(JinjaTest, ConcurrentRendersShareOneTemplate) {
  auto t = Template::Parse("{% for i in range(n) %}{{ i }},{% endfor %}");
  ASSERT_TRUE(t.ok());
  std::vector<std::thread> threads;
  std::vector<std::string> outs(8);
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 50; ++rep) outs[k] = *t->Render(petrel::OrderedJson{{"n", k}}, {});
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(outs[3], "0,1,2,");
  EXPECT_EQ(outs[0], "");
}

class ChatTemplateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("petrel_tpl_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(ChatTemplateDirTest, NamedTemplatesAndAddedTokens) {
  Write("tokenizer_config.json", R"({
    "bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>",
    "chat_template": [{"name": "default", "template": "D{{ bos_token }}{{ eos_token }}"},
                      {"name": "tool_use", "template": "T{{ tools | length }}"}]})");
  auto t = ChatTemplate::FromModelDir(dir_.string());
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  const auto msgs = petrel::OrderedJson::array();
  EXPECT_EQ(*t->Apply(msgs, petrel::OrderedJson(), {}), "D<s></s>");
  EXPECT_EQ(*t->Apply(msgs, petrel::OrderedJson::parse(R"([{"type": "function"}])"), {}), "T1");
}

TEST_F(ChatTemplateDirTest, JinjaFileWinsOverConfig) {
  Write("tokenizer_config.json", R"({"chat_template": "from config", "eos_token": "E"})");
  Write("chat_template.jinja", "from file {{ eos_token }}\n");
  auto t = ChatTemplate::FromModelDir(dir_.string());
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_EQ(*t->Apply(petrel::OrderedJson::array(), petrel::OrderedJson(), {}), "from file E");
}

TEST_F(ChatTemplateDirTest, MissingTemplateIsNotFound) {
  auto t = ChatTemplate::FromModelDir(std::string(PETREL_FIXTURES) + "/templates/gptoss");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kNotFound);
}

TEST_F(ChatTemplateDirTest, SyntaxErrorNamesTemplateAndPosition) {
  Write("tokenizer_config.json", R"({"chat_template": "line1\n{% if x %}"})");
  auto t = ChatTemplate::FromModelDir(dir_.string());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kInvalidFormat);
  EXPECT_NE(t.error().message.find("chat template 'default': 2:"), std::string::npos)
      << t.error().message;
}

TEST(ChatTemplateTest, ToolCallArgumentsPassThroughOrParsed) {
  auto t = ChatTemplate::FromSource(
      "{% for m in messages %}{% for c in m.tool_calls %}{{ c.function.arguments is string }}:"
      "{{ c.function.arguments | tojson }}{% endfor %}{% endfor %}",
      "", "");
  ASSERT_TRUE(t.ok());
  const auto msgs = petrel::OrderedJson::parse(
      R"([{"role": "assistant", "content": null, "tool_calls": [{"type": "function",
          "function": {"name": "f", "arguments": "{\"b\": 1, \"a\": 2}"}}]}])");
  ApplyOptions o;
  EXPECT_EQ(*t->Apply(msgs, petrel::OrderedJson(), o), "True:\"{\\\"b\\\": 1, \\\"a\\\": 2}\"");
  o.parse_tool_call_arguments = true;
  EXPECT_EQ(*t->Apply(msgs, petrel::OrderedJson(), o), "False:{\"b\": 1, \"a\": 2}");
}

TEST(ChatTemplateTest, KwargsAndGenerationPrompt) {
  auto t = ChatTemplate::FromSource(
      "{{ messages | length }}|{{ add_generation_prompt }}|{{ enable_thinking is defined }}|"
      "{{ tools is none }}|{{ bos_token is defined }}",
      "", "</s>");
  ASSERT_TRUE(t.ok());
  ApplyOptions o;
  o.add_generation_prompt = true;
  o.kwargs = petrel::Json{{"enable_thinking", false}};
  EXPECT_EQ(*t->Apply(petrel::Json::array({petrel::Json{{"role", "user"}, {"content", "x"}}}),
                      petrel::Json(), o),
            "1|True|True|True|False");
}

TEST(ChatTemplateTest, RejectsBadShapes) {
  auto t = ChatTemplate::FromSource("x", "", "");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->Apply(petrel::OrderedJson::object(), petrel::OrderedJson(), {}).ok());
  EXPECT_FALSE(t->Apply(petrel::OrderedJson::array(), petrel::OrderedJson::object(), {}).ok());
}

}  // namespace
}  // namespace petrel::jinja
