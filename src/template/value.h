// The dynamic value type of the Jinja interpreter. It models the subset of Python objects that chat
// templates see: Undefined, None, bool, int, float, str, list/tuple, dict, jinja's namespace and
// loop objects, and callables (macros, builtins, bound methods).
//
// Values are cheap to copy: strings, lists and dicts are held by shared_ptr. Templates run in an
// immutable sandbox (as transformers' ImmutableSandboxedEnvironment does), so shared containers
// are never changed after construction, except namespace attributes (`{% set ns.x = ... %}`).
//
// Python-visible behaviour lives here too: truthiness, equality and ordering, `str()` and `repr()`
// rendering (True/False/None, single-quoted reprs), and the `json.dumps` serializer used by the
// `tojson` filter.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/json_util.h"

namespace petrel::jinja {

class Value;
class Interpreter;
struct SourcePos;

// Thrown inside the template module only (lexer, parser, interpreter) and turned into a
// petrel::Error at the public API boundary (see jinja.h). `line`/`column` are 1-based; 0 means
// "unknown", and the interpreter fills in the position of the node being evaluated.
struct TemplateException {
  enum class Kind {
    kSyntax,   // lexer/parser: the template itself is malformed
    kRuntime,  // type errors, undefined misuse, unsupported operations while rendering
    kRaised,   // the template called raise_exception(): the input (messages) was rejected
    kLimit,    // a sandbox limit (steps, output size, recursion) was hit
  };
  std::string message;
  int line = 0;
  int column = 0;
  Kind kind = Kind::kRuntime;
};
[[noreturn]] void Throw(std::string message);
[[noreturn]] void ThrowLimit(std::string message);

// Positional and keyword arguments of a call, already evaluated.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// A builtin function, bound method or macro. `fn` gets the interpreter (for limits, caller state
// and rendering of macros) and the arguments.
struct Callable {
  std::string name;
  std::function<Value(Interpreter&, CallArgs&)> fn;
};

struct List {
  std::vector<Value> items;
  bool is_tuple = false;  // only changes repr(): (1, 2) vs [1, 2]
};

// Insertion-ordered mapping (Python dicts keep insertion order; transformers' tojson output
// depends on it). Lookups are linear: template dicts are small.
struct Dict {
  enum class Kind { kDict, kNamespace, kLoop };
  Kind kind = Kind::kDict;
  std::vector<std::pair<Value, Value>> entries;

  const Value* Find(const Value& key) const;
  const Value* Find(std::string_view key) const;
  const Value* Find(const std::string& key) const { return Find(std::string_view(key)); }
  const Value* Find(const char* key) const { return Find(std::string_view(key)); }
  // Inserts or overwrites (keeps the original position on overwrite, like Python).
  void Set(Value key, Value value);
};

// Why a value is undefined; used for jinja2-compatible messages such as
// "'dict object' has no attribute 'foo'" or "'x' is undefined".
struct UndefinedInfo {
  std::string message;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kCallable };

  Value() : v_(Undef{}) {}  // Undefined with no hint
  static Value Undefined(std::string message = "");
  static Value None() { return Value(NoneTag{}); }
  Value(bool b) : v_(b) {}                       // NOLINT(runtime/explicit)
  Value(int64_t i) : v_(i) {}                    // NOLINT
  Value(int i) : v_(static_cast<int64_t>(i)) {}  // NOLINT
  Value(double d) : v_(d) {}                     // NOLINT
  Value(std::string s) : v_(std::make_shared<const std::string>(std::move(s))) {}  // NOLINT
  Value(const char* s) : Value(std::string(s)) {}                                  // NOLINT
  Value(std::shared_ptr<List> l) : v_(std::move(l)) {}                             // NOLINT
  Value(std::shared_ptr<Dict> d) : v_(std::move(d)) {}                             // NOLINT
  Value(std::shared_ptr<Callable> c) : v_(std::move(c)) {}                         // NOLINT

  static Value MakeList(std::vector<Value> items, bool is_tuple = false);
  static Value MakeDict(Dict::Kind kind = Dict::Kind::kDict);
  static Value MakeCallable(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn);
  // Converts JSON (objects keep their order for OrderedJson; sorted for Json).
  static Value FromJson(const petrel::Json& j);
  static Value FromJson(const petrel::OrderedJson& j);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // Python: bool is a subclass of int, so both count as numbers.
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_mapping() const { return is_dict() && dict().kind == Dict::Kind::kDict; }
  bool is_namespace() const { return is_dict() && dict().kind == Dict::Kind::kNamespace; }
  bool is_callable() const { return kind() == Kind::kCallable; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  // int or bool as int64 (Python int(True) == 1).
  int64_t int_like() const { return is_bool() ? (as_bool() ? 1 : 0) : as_int(); }
  double to_double() const { return is_float() ? as_float() : static_cast<double>(int_like()); }
  const std::string& str() const { return *std::get<StrPtr>(v_); }
  const List& list() const { return *std::get<std::shared_ptr<List>>(v_); }
  const std::shared_ptr<List>& list_ptr() const { return std::get<std::shared_ptr<List>>(v_); }
  const Dict& dict() const { return *std::get<std::shared_ptr<Dict>>(v_); }
  Dict& mutable_dict() const { return *std::get<std::shared_ptr<Dict>>(v_); }
  const Callable& callable() const { return *std::get<std::shared_ptr<Callable>>(v_); }
  const std::string& undefined_message() const;
  // The identity of a shared container (for `is sameas`); nullptr for scalars.
  const void* identity() const;

  // Python truthiness.
  bool Truthy() const;
  // Python `==` (1 == 1.0 == True; lists and dicts compare deeply). `depth` bounds recursion.
  bool Equals(const Value& other, int depth = 0) const;
  // Python `<`; throws TypeError-like errors for unorderable types.
  bool Less(const Value& other, int depth = 0) const;

  // Python str(): None -> "None", strings as is, containers as repr. Undefined -> "".
  std::string ToString() const;
  // Python repr(): strings single-quoted with escapes.
  std::string Repr() const;
  // jinja2's object_type_repr: "dict object", "None", ...
  std::string TypeRepr() const;
  // Python type name: "dict", "str", "NoneType", ...
  std::string TypeName() const;

 private:
  struct Undef {
    std::shared_ptr<const UndefinedInfo> info;
  };
  struct NoneTag {};
  using StrPtr = std::shared_ptr<const std::string>;
  explicit Value(NoneTag t) : v_(t) {}
  void AppendRepr(std::string& out, int depth) const;

  // Order matches Kind.
  std::variant<Undef, NoneTag, bool, int64_t, double, StrPtr, std::shared_ptr<List>,
               std::shared_ptr<Dict>, std::shared_ptr<Callable>>
      v_;
};

// Python's repr() of a float: shortest round-trip digits, "1.0", "1e+16", "inf", "nan".
std::string FormatFloat(double d);
// Python's repr() of a str (chooses ' or " like CPython).
std::string PyStringRepr(std::string_view s);

// Options of json.dumps as transformers' tojson filter exposes them.
struct JsonDumpOptions {
  std::optional<std::string> indent;  // nullopt: single line; "" or "  " etc.: pretty-printed
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
// json.dumps(value); throws TemplateException for values JSON cannot hold (Undefined, callables)
// or for nesting deeper than the interpreter's limit.
std::string DumpJsonValue(const Value& v, const JsonDumpOptions& opts);
// Converts back to JSON (used by the output side and tests); Undefined becomes null.
petrel::OrderedJson ToJson(const Value& v);

}  // namespace petrel::jinja
