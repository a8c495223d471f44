// Golden tests: chat templates rendered byte-identically to transformers' apply_chat_template.
//  - QwenChatCases: every `chat_cases` entry of tests/fixtures/refs.json (Qwen3 template of
//    tests/fixtures/qwen3-tiny).
//  - FamilyReferences: tests/fixtures/templates/refs.json, produced on the device machine by
//    tools/gen_template_refs.py from the real templates in tests/fixtures/templates/<family>/ and
//    the conversations in tests/fixtures/templates/conversations.json.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/json_util.h"
#include "template/chat_template.h"

namespace petrel::jinja {
namespace {

petrel::OrderedJson LoadJson(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = ParseOrderedJson(ss.str(), path);
  EXPECT_TRUE(j.ok()) << j.error().ToString();
  return j.ok() ? *j : petrel::OrderedJson();
}

TEST(ChatTemplateGolden, QwenChatCases) {
  const auto refs = LoadJson(std::string(PETREL_FIXTURES) + "/refs.json");
  auto tpl = ChatTemplate::FromModelDir(std::string(PETREL_FIXTURES) + "/qwen3-tiny");
  ASSERT_TRUE(tpl.ok()) << tpl.error().ToString();
  int n = 0;
  for (const auto& c : refs["chat_cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    ApplyOptions opts;
    opts.add_generation_prompt = c.value("add_generation_prompt", false);
    if (c.contains("kwargs")) opts.kwargs = petrel::Json(c["kwargs"]);
    const petrel::OrderedJson tools = c.contains("tools") ? c["tools"] : petrel::OrderedJson();
    auto out = tpl->Apply(c["messages"], tools, opts);
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(*out, c["rendered"].get<std::string>());
    ++n;
  }
  EXPECT_GE(n, 9);
}

TEST(ChatTemplateGolden, FamilyReferences) {
  const std::string dir = std::string(PETREL_FIXTURES) + "/templates";
  // PETREL_TEMPLATE_REFS points at another refs file (e.g. renders of templates that are checked
  // locally but not committed); family paths stay relative to tests/fixtures/templates.
  const char* override_refs = std::getenv("PETREL_TEMPLATE_REFS");
  const std::string refs_path = override_refs ? override_refs : dir + "/refs.json";
  if (!std::filesystem::exists(refs_path)) GTEST_SKIP() << "no " << refs_path;
  const auto refs = LoadJson(refs_path);
  const auto convs = LoadJson(dir + "/conversations.json");
  int checked = 0, identical = 0;
  for (const auto& r : refs["renders"]) {
    const std::string family = r["family"].get<std::string>();
    const std::string name = r["conversation"].get<std::string>();
    SCOPED_TRACE(family + " / " + name);
    auto tpl = ChatTemplate::FromModelDir(dir + "/" + family);
    ASSERT_TRUE(tpl.ok()) << tpl.error().ToString();
    const petrel::OrderedJson* conv = nullptr;
    for (const auto& c : convs["conversations"]) {
      if (c["name"] == name) conv = &c;
    }
    ASSERT_NE(conv, nullptr);
    ApplyOptions opts;
    opts.add_generation_prompt = conv->value("add_generation_prompt", false);
    if (conv->contains("kwargs")) opts.kwargs = petrel::Json((*conv)["kwargs"]);
    opts.now_unix_seconds = refs["now_unix_seconds"].get<int64_t>();
    const petrel::OrderedJson tools =
        conv->contains("tools") ? (*conv)["tools"] : petrel::OrderedJson();
    auto out = tpl->Apply((*conv)["messages"], tools, opts);
    ++checked;
    if (r.contains("error")) {
      // transformers raised (e.g. raise_exception for unsupported roles): so must we.
      EXPECT_FALSE(out.ok()) << "transformers raised: " << r["error"].get<std::string>();
      if (!out.ok()) ++identical;
      continue;
    }
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(*out, r["rendered"].get<std::string>());
    if (*out == r["rendered"].get<std::string>()) ++identical;
  }
  std::printf("family template renders: %d/%d identical to transformers\n", identical, checked);
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace petrel::jinja
