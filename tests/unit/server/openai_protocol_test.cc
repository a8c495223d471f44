#include "server/openai_protocol.h"

#include <gtest/gtest.h>

namespace petrel::server {
namespace {

Json J(const char* text) { return Json::parse(text); }

// Expects a parse failure naming `param`.
template <typename Fn>
void ExpectBad(Fn parse, const char* body, const std::string& param) {
  std::string p;
  auto r = parse(J(body), &p);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(p, param) << body << " -> " << r.error().message;
}

TEST(ParseBodyTest, BadJsonAndNonObject) {
  EXPECT_FALSE(ParseBody("{").ok());
  EXPECT_FALSE(ParseBody("").ok());
  EXPECT_FALSE(ParseBody("[1,2]").ok());
  EXPECT_FALSE(ParseBody("\"x\"").ok());
  EXPECT_TRUE(ParseBody("{}").ok());
}

TEST(ChatRequestTest, Minimal) {
  std::string p;
  auto r = ParseChatCompletionRequest(
      J(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"), &p);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(r->gen.n, 1);
  EXPECT_FALSE(r->gen.max_tokens.has_value());
  EXPECT_FALSE(r->gen.stream);
  EXPECT_TRUE(r->add_generation_prompt);
  EXPECT_EQ(r->gen.sampling.temperature, 1.0f);
}

TEST(ChatRequestTest, AllSamplingFields) {
  std::string p;
  auto r = ParseChatCompletionRequest(J(R"({
    "messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],
    "temperature":0, "top_p":0.9, "top_k":40, "min_p":0.05, "presence_penalty":0.5,
    "frequency_penalty":-0.5, "repetition_penalty":1.1, "logit_bias":{"42":5,"7":-1000},
    "seed":1234, "max_tokens":10, "max_completion_tokens":20, "n":3, "stop":["a","b"],
    "stop_token_ids":[1,2], "ignore_eos":true, "stream":true,
    "stream_options":{"include_usage":true}, "logprobs":true, "top_logprobs":5,
    "chat_template_kwargs":{"enable_thinking":false}, "unknown_field": {"x": 1}})"),
                                      &p);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& s = r->gen.sampling;
  EXPECT_EQ(s.temperature, 0.0f);
  EXPECT_FLOAT_EQ(s.top_p, 0.9f);
  EXPECT_EQ(s.top_k, 40);
  EXPECT_FLOAT_EQ(s.min_p, 0.05f);
  EXPECT_FLOAT_EQ(s.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(s.repetition_penalty, 1.1f);
  ASSERT_EQ(s.logit_bias.size(), 2u);
  for (auto [id, bias] : s.logit_bias) {
    if (id == 42) {
      EXPECT_EQ(bias, 5.0f);
    }
    if (id == 7) {
      EXPECT_EQ(bias, -100.0f);
    }  // clamped
  }
  EXPECT_EQ(s.seed, 1234u);
  EXPECT_EQ(r->gen.max_tokens, 20);  // max_completion_tokens wins
  EXPECT_EQ(r->gen.n, 3);
  EXPECT_EQ(r->gen.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->gen.stop_token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_TRUE(r->gen.ignore_eos);
  EXPECT_TRUE(r->gen.stream);
  EXPECT_TRUE(r->gen.include_usage);
  EXPECT_TRUE(r->gen.logprobs);
  EXPECT_EQ(r->gen.top_logprobs, 5);
  EXPECT_EQ(r->chat_template_kwargs["enable_thinking"], false);
}

TEST(ChatRequestTest, NullsMeanDefault) {
  std::string p;
  auto r = ParseChatCompletionRequest(
      J(R"({"messages":[{"role":"user","content":"x"}],"temperature":null,"stop":null,"max_tokens":null,"tools":null})"),
      &p);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->gen.sampling.temperature, 1.0f);
  EXPECT_TRUE(r->gen.stop.empty());
}

TEST(ChatRequestTest, WrongTypesNameTheField) {
  auto parse = [](const Json& j, std::string* p) { return ParseChatCompletionRequest(j, p); };
  ExpectBad(parse, R"({})", "messages");
  ExpectBad(parse, R"({"messages":"hi"})", "messages");
  ExpectBad(parse, R"({"messages":[]})", "messages");
  ExpectBad(parse, R"({"messages":[1]})", "messages.0");
  ExpectBad(parse, R"({"messages":[{"content":"x"}]})", "messages.0.role");
  ExpectBad(parse, R"({"messages":[{"role":"wizard","content":"x"}]})", "messages.0.role");
  ExpectBad(parse, R"({"messages":[{"role":"user","content":5}]})", "messages.0.content");
  ExpectBad(parse, R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
            "messages.0.content.0.type");
  const char* m = R"("messages":[{"role":"user","content":"x"}])";
  auto with = [&](const std::string& extra) { return "{" + std::string(m) + "," + extra + "}"; };
  struct Case {
    std::string field;
    const char* param;
  };
  for (const Case& c : std::vector<Case>{
           {R"("model":5)", "model"},
           {R"("temperature":"hot")", "temperature"},
           {R"("temperature":-1)", "temperature"},
           {R"("top_p":0)", "top_p"},
           {R"("top_p":1.5)", "top_p"},
           {R"("top_k":2.5)", "top_k"},
           {R"("top_k":-2)", "top_k"},
           {R"("min_p":2)", "min_p"},
           {R"("presence_penalty":3)", "presence_penalty"},
           {R"("repetition_penalty":0)", "repetition_penalty"},
           {R"("logit_bias":[1])", "logit_bias"},
           {R"("logit_bias":{"abc":1})", "logit_bias"},
           {R"("logit_bias":{"5":"x"})", "logit_bias"},
           {R"("seed":"x")", "seed"},
           {R"("max_tokens":0)", "max_tokens"},
           {R"("max_tokens":"10")", "max_tokens"},
           {R"("max_completion_tokens":-5)", "max_completion_tokens"},
           {R"("n":0)", "n"},
           {R"("n":1000)", "n"},
           {R"("stop":5)", "stop"},
           {R"("stop":["a",1])", "stop"},
           {R"("stop_token_ids":"1")", "stop_token_ids"},
           {R"("stop_token_ids":[-1])", "stop_token_ids"},
           {R"("ignore_eos":"yes")", "ignore_eos"},
           {R"("stream":1)", "stream"},
           {R"("stream_options":true)", "stream_options"},
           {R"("stream_options":{"include_usage":"y"})", "stream_options.include_usage"},
           {R"("logprobs":3)", "logprobs"},
           {R"("top_logprobs":3)", "top_logprobs"},  // without logprobs
           {R"("logprobs":true,"top_logprobs":50)", "top_logprobs"},
           {R"("tools":{})", "tools"},
           {R"("tools":[{"type":"function"}])", "tools.0"},
           {R"("tool_choice":"sometimes")", "tool_choice"},
           {R"("chat_template_kwargs":[])", "chat_template_kwargs"},
       }) {
    ExpectBad(parse, with(c.field).c_str(), c.param);
  }
}

TEST(CompletionRequestTest, PromptShapes) {
  std::string p;
  auto a = ParseCompletionRequest(J(R"({"prompt":"hello"})"), &p);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->text_prompts, (std::vector<std::string>{"hello"}));
  auto b = ParseCompletionRequest(J(R"({"prompt":["a","b"],"echo":true})"), &p);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->text_prompts.size(), 2u);
  EXPECT_TRUE(b->echo);
  auto c = ParseCompletionRequest(J(R"({"prompt":[1,2,3]})"), &p);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->token_prompts.size(), 1u);
  EXPECT_EQ(c->token_prompts[0], (std::vector<int32_t>{1, 2, 3}));
  auto d = ParseCompletionRequest(J(R"({"prompt":[[1],[2,3]]})"), &p);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->token_prompts.size(), 2u);
  auto e = ParseCompletionRequest(J(R"({"prompt":"x","logprobs":3})"), &p);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->gen.logprobs);
  EXPECT_EQ(e->gen.top_logprobs, 3);
}

TEST(CompletionRequestTest, BadPrompts) {
  auto parse = [](const Json& j, std::string* p) { return ParseCompletionRequest(j, p); };
  ExpectBad(parse, R"({})", "prompt");
  ExpectBad(parse, R"({"prompt":5})", "prompt");
  ExpectBad(parse, R"({"prompt":[]})", "prompt");
  ExpectBad(parse, R"({"prompt":[1,"a"]})", "prompt.1");
  ExpectBad(parse, R"({"prompt":["a",1]})", "prompt");
  ExpectBad(parse, R"({"prompt":[[1],[]]})", "prompt");
  ExpectBad(parse, R"({"prompt":[{"a":1}]})", "prompt");
  ExpectBad(parse, R"({"prompt":"x","logprobs":true})", "logprobs");
  ExpectBad(parse, R"({"prompt":"x","echo":"no"})", "echo");
  ExpectBad(parse, R"({"prompt":"x","suffix":"y"})", "suffix");
}

TEST(TokenizeRequestTest, Shapes) {
  std::string p;
  auto a = ParseTokenizeRequest(J(R"({"prompt":"hi"})"), &p);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->add_special_tokens);
  auto b = ParseTokenizeRequest(J(R"({"messages":[{"role":"user","content":"hi"}]})"), &p);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->add_special_tokens);
  EXPECT_FALSE(ParseTokenizeRequest(J(R"({})"), &p).ok());
  EXPECT_FALSE(ParseTokenizeRequest(J(R"({"prompt":1})"), &p).ok());
  auto d = ParseDetokenizeRequest(J(R"({"tokens":[1,2]})"), &p);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->tokens.size(), 2u);
  EXPECT_FALSE(ParseDetokenizeRequest(J(R"({"tokens":"12"})"), &p).ok());
  EXPECT_FALSE(ParseDetokenizeRequest(J(R"({"tokens":[1.5]})"), &p).ok());
}

TEST(SimpleGenerateTest, Shapes) {
  std::string p;
  auto a = ParseSimpleGenerateRequest(J(R"({"prompt":"hi","max_tokens":4})"), &p);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->max_tokens, 4);
  EXPECT_FALSE(ParseSimpleGenerateRequest(J(R"({"max_tokens":4})"), &p).ok());
  EXPECT_EQ(p, "prompt");
}

TEST(ResponseJsonTest, UsageAndLogprobs) {
  Json u = UsageJson({.prompt_tokens = 5, .completion_tokens = 3, .cached_tokens = 2});
  EXPECT_EQ(u["total_tokens"], 8);
  EXPECT_EQ(u["prompt_tokens_details"]["cached_tokens"], 2);
  std::vector<TokenLogprob> lp = {{"a", -0.5f, {{"a", -0.5f}, {"b", -1.0f}}},
                                  {"bc", -1.0f / 0.0f, {}}};
  Json chat = ChatLogprobsJson(lp);
  ASSERT_EQ(chat["content"].size(), 2u);
  EXPECT_EQ(chat["content"][0]["token"], "a");
  EXPECT_EQ(chat["content"][0]["bytes"], Json::array({97}));
  EXPECT_EQ(chat["content"][0]["top_logprobs"].size(), 2u);
  EXPECT_TRUE(chat["content"][1]["logprob"].is_number());  // -inf is not JSON
  Json comp = CompletionLogprobsJson(lp, 10);
  EXPECT_EQ(comp["tokens"], Json::array({"a", "bc"}));
  EXPECT_EQ(comp["text_offset"], Json::array({10, 11}));
  EXPECT_EQ(comp["top_logprobs"][0]["b"], -1.0);
}

}  // namespace
}  // namespace petrel::server
