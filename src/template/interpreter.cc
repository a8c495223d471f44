// Tree-walking interpreter (see interpreter.h) and the public Template API (jinja.h).
//
// Errors: everything below throws TemplateException; Eval/Exec attach the line:column of the
// innermost node that failed, and Template::Render converts the exception into a petrel::Error.
// Exceptions never leave this module.
#include "template/interpreter.h"

#include <algorithm>

#include "template/operators.h"
#include "template/parser.h"
#include "template/utf8.h"

namespace petrel::jinja {

// ---------------------------------------------------------------------------------------------
// Scope

const Value* Scope::Find(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent.get()) {
    for (const auto& [k, v] : s->vars) {
      if (k == name) return &v;
    }
  }
  return nullptr;
}

void Scope::Set(const std::string& name, Value v) {
  for (auto& [k, old] : vars) {
    if (k == name) {
      old = std::move(v);
      return;
    }
  }
  vars.emplace_back(name, std::move(v));
}

// ---------------------------------------------------------------------------------------------
// Limits and output

void Interpreter::StepLimitExceeded() const {
  ThrowLimit("template exceeded the step limit (" + std::to_string(opts_.limits.max_steps) +
             " evaluation steps)");
}

void Interpreter::CheckSize(size_t n) const {
  if (n > opts_.limits.max_output_bytes) {
    ThrowLimit("template output or a value built by it exceeds the size limit (" +
               std::to_string(opts_.limits.max_output_bytes) + " bytes)");
  }
}

void Interpreter::Emit(std::string& out, std::string_view text) const {
  CheckSize(out.size() + text.size());
  out.append(text);
}

std::string Interpreter::Run(const Program& prog, const Value& globals) {
  globals_ = MakeBuiltinGlobals();
  auto root = std::make_shared<Scope>();
  // Builtins first, then the caller's variables (which may shadow them, as in jinja2).
  auto builtin_scope = std::make_shared<Scope>();
  for (const auto& [k, v] : globals_.dict().entries) builtin_scope->Set(k.str(), v);
  root->parent = builtin_scope;
  if (globals.is_dict()) {
    for (const auto& [k, v] : globals.dict().entries) {
      if (k.is_string()) root->Set(k.str(), v);
    }
  }
  // Break reference cycles (macro <-> defining scope, self-referencing namespaces) however the
  // render ends, so nothing outlives it.
  struct Cleanup {
    Interpreter* in;
    ~Cleanup() {
      for (auto& s : in->macro_scopes_) s->vars.clear();
      for (auto& ns : in->namespaces_) ns.mutable_dict().entries.clear();
      in->macro_scopes_.clear();
      in->namespaces_.clear();
    }
  } cleanup{this};
  std::string out;
  ExecBody(prog.body, root, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statements

Interpreter::Flow Interpreter::ExecBody(const StmtList& body, const std::shared_ptr<Scope>& scope,
                                        std::string& out) {
  for (const auto& s : body) {
    const Flow f = Exec(*s, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::Exec(const Stmt& s, const std::shared_ptr<Scope>& scope,
                                    std::string& out) {
  Step();
  try {
    switch (s.kind) {
      case StmtKind::kData:
        Emit(out, s.text);
        return Flow::kNormal;
      case StmtKind::kPrint: {
        const Value v = Eval(*s.expr, scope);
        Emit(out, v.ToString());
        return Flow::kNormal;
      }
      case StmtKind::kIf:
        for (size_t i = 0; i < s.conds.size(); ++i) {
          if (Eval(*s.conds[i], scope).Truthy()) return ExecBody(s.bodies[i], scope, out);
        }
        if (s.bodies.size() > s.conds.size()) return ExecBody(s.bodies.back(), scope, out);
        return Flow::kNormal;
      case StmtKind::kFor:
        ExecFor(s, scope, out);
        return Flow::kNormal;
      case StmtKind::kSet:
      case StmtKind::kSetBlock:
        ExecSet(s, scope, out);
        return Flow::kNormal;
      case StmtKind::kMacro:
        scope->Set(s.text, MakeMacro(s, scope, s.text));
        macro_scopes_.push_back(scope);
        return Flow::kNormal;
      case StmtKind::kCallBlock: {
        // The body becomes `caller`, passed to the called macro as a keyword argument.
        const Expr& call = *s.expr;
        Value fn = Eval(*call.children[0], scope);
        CallArgs args;
        EvalArgs(call, scope, args);
        args.keyword.emplace_back("caller", MakeMacro(s, scope, "caller"));
        Emit(out, Call(fn, args).ToString());
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock: {
        std::string body;
        ExecBody(s.body, scope, body);
        // Apply the filter chain: innermost filter has a null base, which stands for `body`.
        std::vector<const Expr*> chain;
        for (const Expr* f = s.expr.get(); f; f = f->children[0].get()) chain.push_back(f);
        Value v(std::move(body));
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
          CallArgs args;
          EvalArgs(**it, scope, args);
          v = ApplyFilter((*it)->name, v, args);
        }
        Emit(out, v.ToString());
        return Flow::kNormal;
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
    }
  } catch (TemplateException& e) {
    if (e.line == 0) {
      e.line = s.pos.line;
      e.column = s.pos.column;
    }
    throw;
  }
  return Flow::kNormal;
}

// Python iter(): None and numbers are not iterable; namespaces and loop objects neither.
std::vector<Value> Interpreter::Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return v.list().items;
    case Value::Kind::kDict: {
      if (v.dict().kind != Dict::Kind::kDict) break;
      std::vector<Value> keys;
      for (const auto& [k, val] : v.dict().entries) keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      for (char32_t c : utf8::Decode(v.str())) {
        std::string s;
        utf8::Append(s, c);
        chars.emplace_back(std::move(s));
      }
      return chars;
    }
    default:
      break;
  }
  Throw("'" + v.TypeName() + "' object is not iterable");
}

namespace {
// Binds a loop/set target list: one name takes the value, several names unpack a sequence.
void BindTargets(Interpreter& in, const std::vector<std::string>& targets, const Value& v,
                 Scope& scope) {
  if (targets.size() == 1) {
    scope.Set(targets[0], v);
    return;
  }
  std::vector<Value> items = in.Iterate(v);
  if (items.size() != targets.size()) {
    Throw(items.size() < targets.size()
              ? "not enough values to unpack (expected " + std::to_string(targets.size()) +
                    ", got " + std::to_string(items.size()) + ")"
              : "too many values to unpack (expected " + std::to_string(targets.size()) + ")");
  }
  for (size_t i = 0; i < targets.size(); ++i) scope.Set(targets[i], items[i]);
}
}  // namespace

// for-loops: each iteration gets a fresh scope (so `set` inside a loop does not leak, as in
// Jinja2) holding the targets and the `loop` object.
void Interpreter::ExecFor(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
  if (s.recursive) Throw("recursive for loops are not supported");
  const Value iterable = Eval(*s.expr, scope);
  if (iterable.is_none()) Throw("'NoneType' object is not iterable");
  std::vector<Value> items = Iterate(iterable);
  // `for x in xs if cond`: filter first, so loop.index/length count only the kept items.
  if (s.cond) {
    std::vector<Value> kept;
    for (auto& item : items) {
      auto tmp = std::make_shared<Scope>();
      tmp->parent = scope;
      BindTargets(*this, s.targets, item, *tmp);
      if (Eval(*s.cond, tmp).Truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    Step();
    auto iter_scope = std::make_shared<Scope>();
    iter_scope->parent = scope;
    BindTargets(*this, s.targets, items[i], *iter_scope);
    Value loop = Value::MakeDict(Dict::Kind::kLoop);
    Dict& d = loop.mutable_dict();
    d.entries.reserve(12);
    d.entries.emplace_back(Value("index"), Value(i + 1));
    d.entries.emplace_back(Value("index0"), Value(i));
    d.entries.emplace_back(Value("revindex"), Value(n - i));
    d.entries.emplace_back(Value("revindex0"), Value(n - i - 1));
    d.entries.emplace_back(Value("first"), Value(i == 0));
    d.entries.emplace_back(Value("last"), Value(i == n - 1));
    d.entries.emplace_back(Value("length"), Value(n));
    d.entries.emplace_back(Value("depth"), Value(1));
    d.entries.emplace_back(Value("depth0"), Value(0));
    d.entries.emplace_back(Value("previtem"),
                           i > 0 ? items[i - 1] : Value::Undefined("there is no previous item"));
    d.entries.emplace_back(Value("nextitem"),
                           i + 1 < n ? items[i + 1] : Value::Undefined("there is no next item"));
    d.entries.emplace_back(Value("cycle"),
                           Value::MakeCallable("cycle", [i](Interpreter&, CallArgs& a) {
                             if (a.positional.empty()) Throw("no items for cycling given");
                             return a.positional[static_cast<size_t>(i) % a.positional.size()];
                           }));
    iter_scope->Set("loop", loop);
    const Flow f = ExecBody(s.body, iter_scope, out);
    if (f == Flow::kBreak) break;
  }
  if (n == 0 && !s.else_body.empty()) ExecBody(s.else_body, scope, out);
}

// set / block set / namespace attribute assignment.
void Interpreter::ExecSet(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
  Value v;
  if (s.kind == StmtKind::kSetBlock) {
    std::string body;
    ExecBody(s.body, scope, body);
    v = Value(std::move(body));
    if (s.expr) {
      std::vector<const Expr*> chain;
      for (const Expr* f = s.expr.get(); f; f = f->children[0].get()) chain.push_back(f);
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        CallArgs args;
        EvalArgs(**it, scope, args);
        v = ApplyFilter((*it)->name, v, args);
      }
    }
  } else {
    v = Eval(*s.expr, scope);
  }
  if (!s.text.empty()) {  // {% set ns.attr = v %}
    const Value ns = Lookup(s.targets[0], scope);
    if (!ns.is_namespace()) Throw("cannot assign attribute on non-namespace object");
    ns.mutable_dict().Set(Value(s.text), std::move(v));
    return;
  }
  BindTargets(*this, s.targets, v, *scope);
}

// A macro (or call-block body) is a callable that renders its body in a fresh scope whose parent
// is the scope where it was defined.
Value Interpreter::MakeMacro(const Stmt& s, const std::shared_ptr<Scope>& closure,
                             std::string name) {
  const Stmt* stmt = &s;
  return Value::MakeCallable(name, [stmt, closure, name](Interpreter& in, CallArgs& args) {
    if (++in.call_depth_ > in.opts_.limits.max_call_depth) {
      ThrowLimit("maximum macro call depth (" + std::to_string(in.opts_.limits.max_call_depth) +
                 ") exceeded in '" + name + "'");
    }
    auto scope = std::make_shared<Scope>();
    scope->parent = closure;
    const auto& params = stmt->params;
    std::vector<Value> varargs;
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < params.size()) {
        scope->Set(params[i].name, args.positional[i]);
      } else {
        varargs.push_back(args.positional[i]);
      }
    }
    Value kwargs = Value::MakeDict();
    for (auto& [k, v] : args.keyword) {
      const bool is_param =
          std::any_of(params.begin(), params.end(), [&](const Param& p) { return p.name == k; });
      if (is_param || k == "caller") {
        scope->Set(k, v);
      } else {
        kwargs.mutable_dict().Set(Value(k), v);
      }
    }
    for (size_t i = args.positional.size(); i < params.size(); ++i) {
      const bool given = std::any_of(args.keyword.begin(), args.keyword.end(),
                                     [&](const auto& kv) { return kv.first == params[i].name; });
      if (given) continue;
      scope->Set(params[i].name,
                 params[i].default_value
                     ? in.Eval(*params[i].default_value, scope)
                     : Value::Undefined("parameter '" + params[i].name + "' was not provided"));
    }
    scope->Set("varargs", Value::MakeList(std::move(varargs), /*is_tuple=*/true));
    scope->Set("kwargs", kwargs);
    std::string out;
    in.ExecBody(stmt->body, scope, out);
    --in.call_depth_;
    return Value(std::move(out));
  });
}

// ---------------------------------------------------------------------------------------------
// Expressions

Value Interpreter::Lookup(const std::string& name, const std::shared_ptr<Scope>& scope) const {
  if (const Value* v = scope->Find(name)) return *v;
  return Value::Undefined("'" + name + "' is undefined");
}

Value Interpreter::Eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Step();
  try {
    return EvalInner(e, scope);
  } catch (TemplateException& ex) {
    if (ex.line == 0) {
      ex.line = e.pos.line;
      ex.column = e.pos.column;
    }
    throw;
  }
}

void Interpreter::EvalArgs(const Expr& e, const std::shared_ptr<Scope>& scope, CallArgs& args) {
  for (size_t i = 1; i < e.children.size(); ++i)
    args.positional.push_back(Eval(*e.children[i], scope));
  for (const auto& [k, v] : e.kwargs) args.keyword.emplace_back(k, Eval(*v, scope));
}

// Evaluates one expression node; Eval() wraps this to count steps and attach positions.
Value Interpreter::EvalInner(const Expr& e, const std::shared_ptr<Scope>& scope) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName:
      return Lookup(e.name, scope);
    case ExprKind::kGetattr:
      return GetAttr(Eval(*e.children[0], scope), e.name);
    case ExprKind::kGetitem: {
      const Value obj = Eval(*e.children[0], scope);
      return GetItem(obj, Eval(*e.children[1], scope));
    }
    case ExprKind::kSlice:
      return EvalSlice(e, scope);
    case ExprKind::kCall: {
      const Value fn = Eval(*e.children[0], scope);
      CallArgs args;
      EvalArgs(e, scope, args);
      return Call(fn, args);
    }
    case ExprKind::kFilter: {
      const Value input = Eval(*e.children[0], scope);
      CallArgs args;
      EvalArgs(e, scope, args);
      return ApplyFilter(e.name, input, args);
    }
    case ExprKind::kTest: {
      // `x is defined` must not fail on undefined input, so evaluate normally (Undefined is a
      // value) and let the test decide.
      const Value input = Eval(*e.children[0], scope);
      CallArgs args;
      EvalArgs(e, scope, args);
      return Value(ApplyTest(e.name, input, args) != e.negated);
    }
    case ExprKind::kBinary: {
      const Value a = Eval(*e.children[0], scope);
      const Value b = Eval(*e.children[1], scope);
      return BinaryOp(*this, e.name, a, b);
    }
    case ExprKind::kUnary: {
      const Value v = Eval(*e.children[0], scope);
      if (e.name == "not") return Value(!v.Truthy());
      if (v.is_undefined()) ThrowUndefined(v);
      if (!v.is_number())
        Throw("bad operand type for unary " + e.name + ": '" + v.TypeName() + "'");
      if (e.name == "+") return v.is_bool() ? Value(v.int_like()) : v;
      if (v.is_float()) return Value(-v.as_float());
      if (v.int_like() == INT64_MIN) Throw("integer overflow");
      return Value(-v.int_like());
    }
    case ExprKind::kCompare:
      return EvalCompare(e, scope);
    case ExprKind::kAnd: {
      Value a = Eval(*e.children[0], scope);
      return a.Truthy() ? Eval(*e.children[1], scope) : a;
    }
    case ExprKind::kOr: {
      Value a = Eval(*e.children[0], scope);
      return a.Truthy() ? a : Eval(*e.children[1], scope);
    }
    case ExprKind::kCondExpr:
      if (Eval(*e.children[0], scope).Truthy()) return Eval(*e.children[1], scope);
      if (e.children[2]) return Eval(*e.children[2], scope);
      return Value::Undefined("the inline if-expression evaluated to false and has no else");
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.children.size());
      for (const auto& c : e.children) items.push_back(Eval(*c, scope));
      return Value::MakeList(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Value d = Value::MakeDict();
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value k = Eval(*e.children[i], scope);
        if (k.is_list() && !k.list().is_tuple) Throw("unhashable type: 'list'");
        if (k.is_dict()) Throw("unhashable type: 'dict'");
        d.mutable_dict().Set(std::move(k), Eval(*e.children[i + 1], scope));
      }
      return d;
    }
  }
  Throw("unknown expression");
}

Value Interpreter::EvalCompare(const Expr& e, const std::shared_ptr<Scope>& scope) {
  // Python chains: a < b < c means a < b and b < c, each operand evaluated once.
  Value left = Eval(*e.children[0], scope);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = Eval(*e.children[i + 1], scope);
    if (!CompareOp(e.ops[i], left, right)) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Interpreter::EvalSlice(const Expr& e, const std::shared_ptr<Scope>& scope) {
  const Value obj = Eval(*e.children[0], scope);
  std::optional<int64_t> parts[3];
  for (int k = 0; k < 3; ++k) {
    if (!e.children[k + 1]) continue;
    const Value v = Eval(*e.children[k + 1], scope);
    if (v.is_none()) continue;
    if (!v.is_int() && !v.is_bool()) {
      Throw("slice indices must be integers or None, not " + v.TypeName());
    }
    parts[k] = v.int_like();
  }
  return SliceValue(*this, obj, parts[0], parts[1], parts[2]);
}

// Calls a callable value (builtin, bound method, macro, caller, loop.cycle).
Value Interpreter::Call(const Value& fn, CallArgs& args) {
  if (fn.is_undefined()) ThrowUndefined(fn);
  if (!fn.is_callable()) Throw("'" + fn.TypeName() + "' object is not callable");
  Step();
  return fn.callable().fn(*this, args);
}

Value Interpreter::ApplyFilter(const std::string& name, const Value& input, CallArgs& args) {
  FilterFn f = FindFilter(name);
  if (!f) Throw("no filter named '" + name + "'");
  return f(*this, input, args);
}

bool Interpreter::ApplyTest(const std::string& name, const Value& input, CallArgs& args) {
  TestFn t = FindTest(name);
  if (!t) Throw("no test named '" + name + "'");
  return t(*this, input, args);
}

Value Interpreter::GetAttr(const Value& obj, const std::string& name) {
  // jinja2 Environment.getattr: Python attribute first (methods), then item lookup.
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      ThrowUndefined(obj);
    case Value::Kind::kDict:
      if (obj.dict().kind == Dict::Kind::kDict) {
        if (auto m = GetMethod(obj, name)) return *m;
      }
      if (const Value* v = obj.dict().Find(name)) return *v;
      break;
    case Value::Kind::kString:
    case Value::Kind::kList:
      if (auto m = GetMethod(obj, name)) return *m;
      break;
    default:
      break;
  }
  return Value::Undefined("'" + obj.TypeRepr() + "' has no attribute '" + name + "'");
}

Value Interpreter::GetItem(const Value& obj, const Value& key) {
  // jinja2 Environment.getitem: item lookup first, then attribute for string keys.
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      ThrowUndefined(obj);
    case Value::Kind::kDict:
      if (const Value* v = obj.dict().Find(key)) return *v;
      break;
    case Value::Kind::kList:
    case Value::Kind::kString:
      if (key.is_int() || key.is_bool()) {
        const bool is_str = obj.is_string();
        std::u32string chars;
        if (is_str) chars = utf8::Decode(obj.str());
        const int64_t n = is_str ? static_cast<int64_t>(chars.size())
                                 : static_cast<int64_t>(obj.list().items.size());
        const int64_t i = NormalizeIndex(key.int_like(), n);
        if (i >= 0 && i < n) {
          if (!is_str) return obj.list().items[i];
          std::string s;
          utf8::Append(s, chars[i]);
          return Value(std::move(s));
        }
        return Value::Undefined(obj.TypeRepr() + " has no element " + key.Repr());
      }
      if (key.is_undefined()) ThrowUndefined(key);
      if (!key.is_string()) {
        if (obj.is_list() && key.is_list())
          Throw("list indices must be integers or slices, not tuple");
        Throw(obj.TypeName() + " indices must be integers or slices, not " + key.TypeName());
      }
      break;
    default:
      break;
  }
  if (key.is_string())
    return GetAttr(obj.is_dict() && obj.dict().kind == Dict::Kind::kDict ? obj : obj, key.str());
  return Value::Undefined(obj.TypeRepr() + " has no element " + key.Repr());
}

// ---------------------------------------------------------------------------------------------
// Public API

// The module boundary: TemplateException never escapes; it becomes a petrel::Error whose
// message starts with "LINE:COLUMN: ".
Result<Template> Template::Parse(std::string_view source) {
  try {
    Template t;
    t.program_ = std::make_shared<const Program>(ParseTemplate(source));
    return t;
  } catch (const TemplateException& e) {
    return InvalidFormat(e.line, ":", e.column, ": template syntax error: ", e.message);
  } catch (const std::exception& e) {
    return InvalidFormat("template syntax error: ", e.what());
  }
}

Result<std::string> Template::Render(const Value& globals, const RenderOptions& opts) const {
  try {
    Interpreter in(opts);
    return in.Run(*program_, globals);
  } catch (const TemplateException& e) {
    const std::string where =
        e.line > 0 ? std::to_string(e.line) + ":" + std::to_string(e.column) + ": " : "";
    switch (e.kind) {
      case TemplateException::Kind::kLimit:
        return MakeError(ErrorCode::kResourceExhausted, where, e.message);
      case TemplateException::Kind::kRaised:
        return InvalidArgument(where, "raise_exception: ", e.message);
      case TemplateException::Kind::kSyntax:
        return InvalidFormat(where, e.message);
      case TemplateException::Kind::kRuntime:
        return InvalidArgument(where, e.message);
    }
    return InvalidArgument(where, e.message);
  } catch (const std::bad_alloc&) {
    return MakeError(ErrorCode::kResourceExhausted, "out of memory while rendering the template");
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInternal, "rendering the template: ", e.what());
  }
}

Result<std::string> Template::Render(const petrel::OrderedJson& vars,
                                     const RenderOptions& opts) const {
  Value globals;
  try {
    globals = Value::FromJson(vars);
  } catch (const TemplateException& e) {
    return InvalidArgument("template variables: ", e.message);
  }
  return Render(globals, opts);
}

}  // namespace petrel::jinja
