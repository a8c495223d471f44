// Robustness: thousands of random and mutated templates (mutations of real chat templates plus
// token soup) must parse or fail cleanly, and render or fail cleanly within the sandbox limits:
// no crash, no hang, bounded time. The libFuzzer entry point with the same body is
// tests/fuzz/template_fuzz.cc (-DPETREL_FUZZ=ON with clang).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>

#include "core/json_util.h"
#include "template/jinja.h"
#include "template/output_parser.h"

namespace petrel::jinja {
namespace {

std::string ReadQwenTemplate() {
  std::ifstream f(std::string(PETREL_FIXTURES) + "/qwen3-tiny/tokenizer_config.json");
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = ParseJson(ss.str(), "tokenizer_config.json");
  return j.ok() ? (*j)["chat_template"].get<std::string>() : std::string("{{ messages }}");
}

const char* const kPieces[] = {
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "-",
    "+",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "\\",
    " if ",
    " for ",
    " in ",
    " endfor ",
    " endif ",
    " else ",
    " set ",
    " macro ",
    " endmacro ",
    " call ",
    " endcall ",
    " is ",
    " not ",
    " and ",
    " or ",
    "|",
    ".",
    ",",
    ":",
    "=",
    "~",
    "*",
    "**",
    "//",
    "%",
    "loop",
    "messages",
    "range(",
    "namespace(",
    "caller()",
    "x",
    "1",
    "0.5",
    "none",
    "true",
    "\n",
    "  ",
    "é",
    "\xff",
    "{% raw %}",
    "{% endraw %}",
    "tojson",
    "join",
    "{% break %}",
    "{% continue %}",
    "[::-1]",
    "{% set ns.a = 1 %}",
    "{% filter upper %}",
};

std::string Mutate(std::string s, std::mt19937& rng) {
  const int n = 1 + static_cast<int>(rng() % 6);
  for (int k = 0; k < n; ++k) {
    const size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 4) {
      case 0:  // insert a syntax piece
        s.insert(pos, kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))]);
        break;
      case 1:  // delete a span
        if (!s.empty()) s.erase(std::min(pos, s.size() - 1), 1 + rng() % 8);
        break;
      case 2:  // flip a byte
        if (!s.empty()) s[std::min(pos, s.size() - 1)] = static_cast<char>(rng() % 256);
        break;
      case 3: {  // duplicate a span (creates deep nesting and repetition)
        if (s.empty()) break;
        const size_t a = rng() % s.size();
        const size_t len = std::min<size_t>(1 + rng() % 64, s.size() - a);
        s.insert(pos, s.substr(a, len));
        break;
      }
    }
  }
  return s;
}

TEST(TemplateFuzzTest, MutatedTemplatesNeverCrashOrHang) {
  const std::string qwen = ReadQwenTemplate();
  const auto vars = petrel::OrderedJson::parse(R"({
    "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"},
                 {"role": "assistant", "content": "<think>r</think>a",
                  "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
                 {"role": "tool", "content": "r"}],
    "tools": [{"type": "function", "function": {"name": "f"}}], "add_generation_prompt": true})");
  RenderOptions opts;
  opts.limits.max_steps = 200'000;
  opts.limits.max_output_bytes = 1 << 20;
  opts.limits.max_call_depth = 50;
  std::mt19937 rng(12345);
  const auto start = std::chrono::steady_clock::now();
  int parsed = 0, rendered = 0;
  const int kIterations = 10000;
  for (int i = 0; i < kIterations; ++i) {
    std::string src;
    if (i % 3 == 2) {  // token soup
      const int n = 1 + static_cast<int>(rng() % 40);
      for (int k = 0; k < n; ++k) src += kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))];
    } else {
      src = Mutate(qwen, rng);
    }
    auto t = Template::Parse(src);
    if (!t.ok()) continue;
    ++parsed;
    auto r = t->Render(vars, opts);
    if (r.ok()) ++rendered;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fuzz: %d templates, %d parsed, %d rendered, %.2f s\n", kIterations, parsed, rendered,
              secs);
  EXPECT_GT(parsed, 100);
  EXPECT_LT(secs, 60.0);
}

TEST(TemplateFuzzTest, HostileTemplatesAreBounded) {
  const char* const hostile[] = {
      "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
      "{% macro f(x) %}{{ f(x ~ x) }}{% endmacro %}{{ f('ab') }}",
      "{% for a in range(99999) %}{% for b in range(99999) %}{{ a }}{% endfor %}{% endfor %}",
      "{{ 'x' * 999999999 }}",
      "{{ [1] * 999999999 }}",
      "{{ 2 ** 99999 }}",
      "{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns }}{{ ns | tojson }}",
      "{% set ns = namespace(s='a') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% "
      "endfor %}",
      "{{ range(99999) | map('string') | join(',') | length }}",
      "{% for x in range(100000) %}{% endfor %}{{ range(100000) | sort | length }}",
  };
  RenderOptions opts;
  opts.limits.max_steps = 500'000;
  opts.limits.max_output_bytes = 1 << 20;
  for (const char* src : hostile) {
    SCOPED_TRACE(src);
    const auto start = std::chrono::steady_clock::now();
    auto t = Template::Parse(src);
    if (t.ok()) (void)t->Render(petrel::OrderedJson::object(), opts);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              30.0);  // generous: sanitizer builds on a loaded machine are ~20x slower
  }
}

TEST(TemplateFuzzTest, OutputParserOnRandomText) {
  std::mt19937 rng(7);
  const char* const bits[] = {
      "<think>", "</think>", "<tool_call>", "</tool_call>",  "{", "}",   "\"name\"", ":", "\n",
      "x",       "<",        "/",           "\"arguments\"", "é", "\xc3"};
  for (int i = 0; i < 2000; ++i) {
    std::string text;
    const int n = static_cast<int>(rng() % 30);
    for (int k = 0; k < n; ++k) text += bits[rng() % (sizeof(bits) / sizeof(bits[0]))];
    OutputParserOptions o;
    o.starts_in_reasoning = (i % 2) == 1;
    o.make_tool_call_id = [](size_t k) { return "c" + std::to_string(k); };
    (void)ParseOutput(text, o);
  }
}

}  // namespace
}  // namespace petrel::jinja
