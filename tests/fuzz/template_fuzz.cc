// libFuzzer entry point for the Jinja engine: the input is a template; it is parsed and, when it
// parses, rendered against a small chat-shaped context under tight sandbox limits. Any crash,
// sanitizer report, or hang (beyond libFuzzer's -timeout) is a bug.
//
// Build: cmake -DPETREL_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... && cmake --build . --target
// template_fuzz Run:   build/bin/template_fuzz -max_len=4096 -timeout=5 corpus_dir/
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/json_util.h"
#include "template/jinja.h"
#include "template/output_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace petrel::jinja;
  const std::string_view src(reinterpret_cast<const char*>(data), size);
  static const petrel::OrderedJson kVars = petrel::OrderedJson::parse(R"({
    "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"},
                 {"role": "assistant", "content": "<think>r</think>a",
                  "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]}],
    "tools": [{"type": "function", "function": {"name": "f"}}], "add_generation_prompt": true})");
  auto t = Template::Parse(src);
  if (t.ok()) {
    RenderOptions opts;
    opts.limits.max_steps = 100'000;
    opts.limits.max_output_bytes = 1 << 20;
    opts.limits.max_call_depth = 50;
    opts.now_unix_seconds = 0;
    (void)t->Render(kVars, opts);
  }
  // The same bytes as model output for the chat output parser.
  OutputParserOptions o;
  o.make_tool_call_id = [](size_t i) { return "c" + std::to_string(i); };
  (void)ParseOutput(src, o);
  return 0;
}
