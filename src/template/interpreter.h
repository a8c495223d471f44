// The tree-walking interpreter (internal to src/template). One Interpreter renders one template
// once; it owns the scope chain, the sandbox counters and the output buffer. Builtins (filters,
// tests, methods, globals) receive it to call back into evaluation, count work and check sizes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "template/ast.h"
#include "template/jinja.h"
#include "template/value.h"

namespace petrel::jinja {

// A variable scope: the template's top level, one loop iteration, or one macro call.
struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* Find(std::string_view name) const;
  void Set(const std::string& name, Value v);
};

class Interpreter {
 public:
  explicit Interpreter(const RenderOptions& opts) : opts_(opts) {}

  // Renders `prog` with `globals` (a dict) as the outermost scope. Throws TemplateException.
  std::string Run(const Program& prog, const Value& globals);

  // --- services for builtins -------------------------------------------------------------------
  // Counts `n` units of work against the step limit.
  void Step(int64_t n = 1) {
    steps_ += n;
    if (steps_ > opts_.limits.max_steps) StepLimitExceeded();
  }
  // Throws if a string/list about to be built would exceed the output limit.
  void CheckSize(size_t n) const;
  const RenderOptions& options() const { return opts_; }
  // Remembers a mutable namespace so Run() can clear it at the end: `{% set ns.me = ns %}`
  // would otherwise be a shared_ptr cycle that outlives the render.
  void TrackNamespace(const Value& ns) { namespaces_.push_back(ns); }

  Value Call(const Value& fn, CallArgs& args);
  Value ApplyFilter(const std::string& name, const Value& input, CallArgs& args);
  bool ApplyTest(const std::string& name, const Value& input, CallArgs& args);
  // Attribute lookup `obj.name` / item lookup `obj[key]` with jinja2's fallbacks.
  Value GetAttr(const Value& obj, const std::string& name);
  Value GetItem(const Value& obj, const Value& key);
  // Iterates like Python's iter(): list items, dict keys, string characters; Undefined is empty.
  std::vector<Value> Iterate(const Value& v);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow ExecBody(const StmtList& body, const std::shared_ptr<Scope>& scope, std::string& out);
  Flow Exec(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out);
  void ExecFor(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out);
  void ExecSet(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out);
  Value MakeMacro(const Stmt& s, const std::shared_ptr<Scope>& closure, std::string name);
  Value Eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value EvalInner(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value EvalCompare(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value EvalSlice(const Expr& e, const std::shared_ptr<Scope>& scope);
  void EvalArgs(const Expr& e, const std::shared_ptr<Scope>& scope, CallArgs& args);
  Value Lookup(const std::string& name, const std::shared_ptr<Scope>& scope) const;
  void Emit(std::string& out, std::string_view text) const;
  [[noreturn]] void StepLimitExceeded() const;

  const RenderOptions& opts_;
  // Scopes that hold macros (a macro keeps its defining scope alive: a cycle) and namespaces;
  // both are cleared when Run() returns or throws.
  std::vector<std::shared_ptr<Scope>> macro_scopes_;
  std::vector<Value> namespaces_;
  int64_t steps_ = 0;
  int call_depth_ = 0;
  Value globals_;  // builtin functions (range, namespace, raise_exception, ...)
};

// --- builtins (filters.cc, tests.cc, methods.cc) ----------------------------------------------

// Returns nullptr when no filter/test has that name.
using FilterFn = Value (*)(Interpreter&, const Value&, CallArgs&);
using TestFn = bool (*)(Interpreter&, const Value&, CallArgs&);
FilterFn FindFilter(std::string_view name);
TestFn FindTest(std::string_view name);
// A bound method of a str/dict/list (`"a b".split`), or nullopt when `obj` has no such method.
// Mutating methods (append, pop, update, ...) throw a sandbox error, as in transformers' jinja2
// ImmutableSandboxedEnvironment.
std::optional<Value> GetMethod(const Value& obj, const std::string& name);
// Builtin globals: range, namespace, dict, raise_exception, strftime_now.
Value MakeBuiltinGlobals();

// Binds arguments by name for builtins: `ArgBinder b(args, "filter", {"width", "first"});`
// then `b.Get(0)`; unknown keywords and too many positionals are errors.
class ArgBinder {
 public:
  ArgBinder(CallArgs& args, std::string_view fn_name, std::vector<std::string_view> names);
  // The argument at `index` (positional or keyword), or nullopt when not given.
  const Value* Get(size_t index) const { return index < bound_.size() ? bound_[index] : nullptr; }
  Value GetOr(size_t index, Value fallback) const {
    const Value* v = Get(index);
    return v ? *v : fallback;
  }

 private:
  std::vector<const Value*> bound_;
};

// Python-style helpers shared by builtins.
std::string RequireString(const Value& v, std::string_view what);
int64_t RequireInt(const Value& v, std::string_view what);
// Python slice/index normalisation: negative indices count from the end.
int64_t NormalizeIndex(int64_t i, int64_t size);

}  // namespace petrel::jinja
