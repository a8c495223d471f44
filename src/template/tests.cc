// Jinja2 tests (`x is defined`, `x is string`, ...), following jinja2/tests.py. Note the Python
// subtleties kept here: bool counts as a number but not as an integer; Undefined is iterable
// and a sequence (jinja2's Undefined defines __iter__, __len__ and __getitem__).
#include "template/interpreter.h"
#include "template/operators.h"
#include "template/utf8.h"

namespace petrel::jinja {

namespace {

const Value& Arg(CallArgs& a, std::string_view test) {
  if (!a.positional.empty()) return a.positional[0];
  if (!a.keyword.empty()) return a.keyword[0].second;
  Throw("test '" + std::string(test) + "' needs an argument");
}

bool TDefined(Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool TUndefined(Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool TNone(Interpreter&, const Value& v, CallArgs&) { return v.is_none(); }
bool TString(Interpreter&, const Value& v, CallArgs&) { return v.is_string(); }
bool TMapping(Interpreter&, const Value& v, CallArgs&) { return v.is_mapping(); }
bool TNumber(Interpreter&, const Value& v, CallArgs&) { return v.is_number(); }
bool TInteger(Interpreter&, const Value& v, CallArgs&) { return v.is_int(); }
bool TFloat(Interpreter&, const Value& v, CallArgs&) { return v.is_float(); }
bool TBoolean(Interpreter&, const Value& v, CallArgs&) { return v.is_bool(); }
bool TTrue(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool TFalse(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool TCallable(Interpreter&, const Value& v, CallArgs&) { return v.is_callable(); }
bool TEscaped(Interpreter&, const Value&, CallArgs&) { return false; }  // no Markup objects

bool TIterable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_mapping();
}
bool TSequence(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_mapping();
}

bool TOdd(Interpreter&, const Value& v, CallArgs&) { return RequireInt(v, "odd") % 2 != 0; }
bool TEven(Interpreter&, const Value& v, CallArgs&) { return RequireInt(v, "even") % 2 == 0; }
bool TDivisibleBy(Interpreter&, const Value& v, CallArgs& a) {
  const int64_t d = RequireInt(Arg(a, "divisibleby"), "divisibleby");
  if (d == 0) Throw("integer division or modulo by zero");
  return RequireInt(v, "divisibleby") % d == 0;
}

bool TSameAs(Interpreter&, const Value& v, CallArgs& a) {
  const Value& o = Arg(a, "sameas");
  if (v.identity() || o.identity()) return v.identity() == o.identity();
  // Python `is` on singletons and (interned) small values.
  if (v.kind() != o.kind()) return false;
  return v.Equals(o);
}

bool TLower(Interpreter&, const Value& v, CallArgs&) {
  if (!v.is_string()) return false;
  bool cased = false;
  for (char32_t c : utf8::Decode(v.str())) {
    if (utf8::IsUpper(c)) return false;
    cased = cased || utf8::IsLower(c);
  }
  return cased;
}
bool TUpper(Interpreter&, const Value& v, CallArgs&) {
  if (!v.is_string()) return false;
  bool cased = false;
  for (char32_t c : utf8::Decode(v.str())) {
    if (utf8::IsLower(c)) return false;
    cased = cased || utf8::IsUpper(c);
  }
  return cased;
}

bool TIn(Interpreter&, const Value& v, CallArgs& a) { return Contains(Arg(a, "in"), v); }
bool TEq(Interpreter&, const Value& v, CallArgs& a) { return CompareOp("==", v, Arg(a, "eq")); }
bool TNe(Interpreter&, const Value& v, CallArgs& a) { return CompareOp("!=", v, Arg(a, "ne")); }
bool TLt(Interpreter&, const Value& v, CallArgs& a) { return CompareOp("<", v, Arg(a, "lt")); }
bool TLe(Interpreter&, const Value& v, CallArgs& a) { return CompareOp("<=", v, Arg(a, "le")); }
bool TGt(Interpreter&, const Value& v, CallArgs& a) { return CompareOp(">", v, Arg(a, "gt")); }
bool TGe(Interpreter&, const Value& v, CallArgs& a) { return CompareOp(">=", v, Arg(a, "ge")); }

bool TFilter(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && FindFilter(v.str()) != nullptr;
}
bool TTest(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && FindTest(v.str()) != nullptr;
}

struct TestEntry {
  const char* name;
  TestFn fn;
};
constexpr TestEntry kTests[] = {
    {"defined", TDefined},
    {"undefined", TUndefined},
    {"none", TNone},
    {"string", TString},
    {"mapping", TMapping},
    {"iterable", TIterable},
    {"sequence", TSequence},
    {"number", TNumber},
    {"integer", TInteger},
    {"float", TFloat},
    {"boolean", TBoolean},
    {"true", TTrue},
    {"false", TFalse},
    {"callable", TCallable},
    {"escaped", TEscaped},
    {"odd", TOdd},
    {"even", TEven},
    {"divisibleby", TDivisibleBy},
    {"sameas", TSameAs},
    {"lower", TLower},
    {"upper", TUpper},
    {"in", TIn},
    {"eq", TEq},
    {"equalto", TEq},
    {"==", TEq},
    {"ne", TNe},
    {"!=", TNe},
    {"lt", TLt},
    {"lessthan", TLt},
    {"<", TLt},
    {"le", TLe},
    {"<=", TLe},
    {"gt", TGt},
    {"greaterthan", TGt},
    {">", TGt},
    {"ge", TGe},
    {">=", TGe},
    {"filter", TFilter},
    {"test", TTest},
};

}  // namespace

TestFn FindTest(std::string_view name) {
  for (const auto& t : kTests) {
    if (name == t.name) return t.fn;
  }
  return nullptr;
}

}  // namespace petrel::jinja
