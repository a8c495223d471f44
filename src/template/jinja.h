// Public entry point of the Jinja2 engine: parse once, render many times.
//
//   PETREL_TRY(auto tpl, jinja::Template::Parse(source));
//   PETREL_TRY(std::string text, tpl.Render(vars_json, jinja::RenderOptions{}));
//
// The engine reproduces jinja2 as transformers configures it for chat templates
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson,
// raise_exception and strftime_now globals). Rendering is sandboxed: limits on evaluation steps,
// output size, call depth and range() length turn hostile templates into errors.
//
// Errors are petrel::Error values whose message starts with "LINE:COLUMN: " (1-based) when the
// position is known:
//   kInvalidFormat     syntax errors (and unsupported tags)
//   kInvalidArgument   raise_exception(), undefined misuse, type errors while rendering
//   kResourceExhausted a sandbox limit was hit
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json_util.h"
#include "template/value.h"

namespace petrel::jinja {

struct Program;

struct RenderLimits {
  int64_t max_steps = 20'000'000;       // expression evaluations + statement executions
  size_t max_output_bytes = 64u << 20;  // also caps any single string built while rendering
  int max_call_depth = 200;             // nested macro / caller() calls
  int64_t max_range = 100'000;          // longest range() (jinja2's sandbox uses the same)
};

struct RenderOptions {
  RenderLimits limits;
  // Time returned by strftime_now(), in seconds since the epoch, formatted as UTC. Unset: the
  // current local time (what transformers does). Set it for reproducible renders.
  std::optional<int64_t> now_unix_seconds;
};

// A parsed template. Copies share the immutable AST; Render() is const and thread-safe.
class Template {
 public:
  static Result<Template> Parse(std::string_view source);

  // Renders with `globals` (a dict Value) as the template's variables.
  Result<std::string> Render(const Value& globals, const RenderOptions& opts) const;
  // Convenience: variables from a JSON object (keys keep the JSON object's order).
  Result<std::string> Render(const petrel::OrderedJson& vars, const RenderOptions& opts) const;

 private:
  std::shared_ptr<const Program> program_;
};

}  // namespace petrel::jinja
