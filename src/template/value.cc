// Value semantics (see value.h): Python equality/ordering/truthiness, str()/repr() rendering, float
// formatting identical to CPython's repr, and a json.dumps clone for the `tojson` filter.
#include "template/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "template/utf8.h"

namespace petrel::jinja {

namespace {
// Deepest nesting that repr(), ==, < and json.dumps follow. Deeper (or cyclic, via namespaces)
// values are an error rather than a stack overflow.
constexpr int kMaxValueDepth = 256;

void CheckDepth(int depth) {
  if (depth > kMaxValueDepth) ThrowLimit("value nesting too deep (cyclic or more than 256 levels)");
}
}  // namespace

void Throw(std::string message) { throw TemplateException{std::move(message), 0, 0}; }
void ThrowLimit(std::string message) {
  throw TemplateException{std::move(message), 0, 0, TemplateException::Kind::kLimit};
}

// ---------------------------------------------------------------------------------------------
// Dict

const Value* Dict::Find(const Value& key) const {
  if (key.is_string()) return Find(std::string_view(key.str()));
  for (const auto& [k, v] : entries) {
    if (k.Equals(key)) return &v;
  }
  return nullptr;
}

const Value* Dict::Find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k.is_string() && k.str() == key) return &v;
  }
  return nullptr;
}

void Dict::Set(Value key, Value value) {
  for (auto& [k, v] : entries) {
    if (k.Equals(key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

// ---------------------------------------------------------------------------------------------
// Construction

Value Value::Undefined(std::string message) {
  Value v;
  if (!message.empty()) {
    v.v_ = Undef{std::make_shared<const UndefinedInfo>(UndefinedInfo{std::move(message)})};
  }
  return v;
}

const std::string& Value::undefined_message() const {
  static const std::string kEmpty;  // immutable, so not mutable global state
  const auto& u = std::get<Undef>(v_);
  return u.info ? u.info->message : kEmpty;
}

Value Value::MakeList(std::vector<Value> items, bool is_tuple) {
  auto l = std::make_shared<List>();
  l->items = std::move(items);
  l->is_tuple = is_tuple;
  return Value(std::move(l));
}

Value Value::MakeDict(Dict::Kind kind) {
  auto d = std::make_shared<Dict>();
  d->kind = kind;
  return Value(std::move(d));
}

Value Value::MakeCallable(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn) {
  return Value(std::make_shared<Callable>(Callable{std::move(name), std::move(fn)}));
}

namespace {
template <typename J>
Value FromJsonImpl(const J& j, int depth) {
  CheckDepth(depth);
  switch (j.type()) {
    case J::value_t::null:
    case J::value_t::discarded:
      return Value::None();
    case J::value_t::boolean:
      return Value(j.template get<bool>());
    case J::value_t::number_integer:
      return Value(j.template get<int64_t>());
    case J::value_t::number_unsigned: {
      const auto u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case J::value_t::number_float:
      return Value(j.template get<double>());
    case J::value_t::string:
      return Value(j.template get<std::string>());
    case J::value_t::binary:
      return Value::None();
    case J::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(FromJsonImpl(e, depth + 1));
      return Value::MakeList(std::move(items));
    }
    case J::value_t::object: {
      Value d = Value::MakeDict();
      auto& entries = d.mutable_dict().entries;
      entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        entries.emplace_back(Value(it.key()), FromJsonImpl(it.value(), depth + 1));
      }
      return d;
    }
  }
  return Value::None();
}
}  // namespace

Value Value::FromJson(const petrel::Json& j) { return FromJsonImpl(j, 0); }
Value Value::FromJson(const petrel::OrderedJson& j) { return FromJsonImpl(j, 0); }

const void* Value::identity() const {
  switch (kind()) {
    case Kind::kList:
      return list_ptr().get();
    case Kind::kDict:
      return std::get<std::shared_ptr<Dict>>(v_).get();
    case Kind::kCallable:
      return std::get<std::shared_ptr<Callable>>(v_).get();
    default:
      return nullptr;
  }
}

// ---------------------------------------------------------------------------------------------
// Python semantics

// Python bool(): empty containers, 0, 0.0, "", None and Undefined are false.
bool Value::Truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return as_bool();
    case Kind::kInt:
      return as_int() != 0;
    case Kind::kFloat:
      return as_float() != 0.0;
    case Kind::kString:
      return !str().empty();
    case Kind::kList:
      return !list().items.empty();
    case Kind::kDict:
      // Namespace and loop objects are plain objects in Python: always true.
      return dict().kind != Dict::Kind::kDict || !dict().entries.empty();
    case Kind::kCallable:
      return true;
  }
  return false;
}

// Python ==: numbers compare across int/float/bool; tuples never equal lists; dicts compare
// as unordered mappings; namespaces and callables by identity.
bool Value::Equals(const Value& o, int depth) const {
  CheckDepth(depth);
  if (is_number() && o.is_number()) {
    if (is_float() || o.is_float()) return to_double() == o.to_double();
    return int_like() == o.int_like();
  }
  if (kind() != o.kind()) return false;
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return str() == o.str();
    case Kind::kList: {
      const auto& a = list();
      const auto& b = o.list();
      if (a.is_tuple != b.is_tuple || a.items.size() != b.items.size()) return false;
      for (size_t i = 0; i < a.items.size(); ++i) {
        if (!a.items[i].Equals(b.items[i], depth + 1)) return false;
      }
      return true;
    }
    case Kind::kDict: {
      const auto& a = dict();
      const auto& b = o.dict();
      if (a.kind != Dict::Kind::kDict || b.kind != Dict::Kind::kDict)
        return identity() == o.identity();
      if (a.entries.size() != b.entries.size()) return false;
      for (const auto& [k, v] : a.entries) {
        const Value* other = b.Find(k);
        if (!other || !v.Equals(*other, depth + 1)) return false;
      }
      return true;
    }
    case Kind::kCallable:
      return identity() == o.identity();
    default:
      return false;
  }
}

// Python <: numbers, strings (code point order), same-kind sequences lexicographically.
bool Value::Less(const Value& o, int depth) const {
  CheckDepth(depth);
  if (is_number() && o.is_number()) {
    if (is_float() || o.is_float()) return to_double() < o.to_double();
    return int_like() < o.int_like();
  }
  if (is_string() && o.is_string()) return str() < o.str();  // UTF-8 order == code point order
  if (is_list() && o.is_list() && list().is_tuple == o.list().is_tuple) {
    const auto& a = list().items;
    const auto& b = o.list().items;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (!a[i].Equals(b[i], depth + 1)) return a[i].Less(b[i], depth + 1);
    }
    return a.size() < b.size();
  }
  Throw("'<' not supported between instances of '" + TypeName() + "' and '" + o.TypeName() + "'");
}

// Python type(x).__name__, used in error messages.
std::string Value::TypeName() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return list().is_tuple ? "tuple" : "list";
    case Kind::kDict:
      switch (dict().kind) {
        case Dict::Kind::kDict:
          return "dict";
        case Dict::Kind::kNamespace:
          return "Namespace";
        case Dict::Kind::kLoop:
          return "LoopContext";
      }
      return "dict";
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

// jinja2 object_type_repr(), used in undefined-attribute messages.
std::string Value::TypeRepr() const {
  if (is_none()) return "None";
  if (is_namespace()) return "jinja2.utils.Namespace object";
  if (is_dict() && dict().kind == Dict::Kind::kLoop) return "jinja2.runtime.LoopContext object";
  return TypeName() + " object";
}

// ---------------------------------------------------------------------------------------------
// Rendering

// Python float repr: shortest digits that round-trip (std::to_chars gives the same digits as
// CPython's dtoa), laid out fixed for 1e-4 <= |x| < 1e16 and in exponent form otherwise.
std::string FormatFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // e.g. "-1.2345e+17"
  std::string out;
  size_t pos = 0;
  if (sci[0] == '-') {
    out.push_back('-');
    pos = 1;
  }
  const size_t epos = sci.find('e');
  std::string digits;
  for (size_t i = pos; i < epos; ++i) {
    if (sci[i] != '.') digits.push_back(sci[i]);
  }
  const int exp = std::stoi(sci.substr(epos + 1));
  // Trailing zeros of the mantissa are not significant (to_chars already gives the shortest).
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (exp >= -4 && exp < 16) {  // CPython repr: fixed notation for 1e-4 <= |d| < 1e16
    if (exp >= 0) {
      const size_t int_len = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    } else {
      out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char ebuf[16];
  std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return out + ebuf;
}

// Python repr(str): single quotes unless the text has ' and no ", escapes for \\, the quote,
// \n \r \t, \xNN / \uNNNN / \UNNNNNNNN for non-printable code points.
std::string PyStringRepr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : utf8::Decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (utf8::IsPrintable(c)) {
      utf8::Append(out, c);
    } else {
      char buf[16];
      if (c >= 0xDC80 && c <= 0xDCFF) {
        std::snprintf(buf, sizeof(buf), "\\udc%02x", static_cast<unsigned>(c & 0xFF));
      } else if (c < 0x100) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      } else if (c < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      }
      out += buf;
    }
  }
  out.push_back(quote);
  return out;
}

// Python repr() of containers (str() of a list is its repr): [..], (..,), {k: v}.
void Value::AppendRepr(std::string& out, int depth) const {
  CheckDepth(depth);
  switch (kind()) {
    case Kind::kString:
      out += PyStringRepr(str());
      return;
    case Kind::kUndefined:
      out += "Undefined";  // jinja2's repr(Undefined)
      return;
    case Kind::kList: {
      const auto& l = list();
      out.push_back(l.is_tuple ? '(' : '[');
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        l.items[i].AppendRepr(out, depth + 1);
      }
      if (l.is_tuple && l.items.size() == 1) out.push_back(',');
      out.push_back(l.is_tuple ? ')' : ']');
      return;
    }
    case Kind::kDict: {
      const auto& d = dict();
      if (d.kind == Dict::Kind::kLoop) {
        out += "<LoopContext>";
        return;
      }
      if (d.kind == Dict::Kind::kNamespace) out += "<Namespace ";
      out.push_back('{');
      for (size_t i = 0; i < d.entries.size(); ++i) {
        if (i) out += ", ";
        d.entries[i].first.AppendRepr(out, depth + 1);
        out += ": ";
        d.entries[i].second.AppendRepr(out, depth + 1);
      }
      out.push_back('}');
      if (d.kind == Dict::Kind::kNamespace) out.push_back('>');
      return;
    }
    case Kind::kCallable:
      out += "<function " + callable().name + ">";
      return;
    default:
      out += ToString();
  }
}

std::string Value::Repr() const {
  std::string out;
  AppendRepr(out, 0);
  return out;
}

// Python str(); what {{ x }}, ~ and the string filter print.
std::string Value::ToString() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return as_bool() ? "True" : "False";
    case Kind::kInt:
      return std::to_string(as_int());
    case Kind::kFloat:
      return FormatFloat(as_float());
    case Kind::kString:
      return str();
    default:
      return Repr();
  }
}

// ---------------------------------------------------------------------------------------------
// json.dumps

namespace {
// json.dumps string escaping: ", \\ and control characters; non-ASCII kept unless
// ensure_ascii (then \uXXXX with surrogate pairs).
void AppendJsonString(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  for (char32_t c : utf8::Decode(s)) {
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    char buf[16];
    if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c >= 0x10000) {
        const char32_t v = c - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                      static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      utf8::Append(out, c);
    }
  }
  out.push_back('"');
}

// json.dumps coerces int/float/bool/None keys to strings.
std::string JsonKey(const Value& k) {
  if (k.is_string()) return k.str();
  if (k.is_bool()) return k.as_bool() ? "true" : "false";
  if (k.is_none()) return "null";
  if (k.is_int()) return std::to_string(k.as_int());
  if (k.is_float()) return FormatFloat(k.as_float());
  Throw("keys must be str, int, float, bool or None, not " + k.TypeName());
}

// json.dumps layout: with indent, each item on its own line after item_separator (so custom
// separators keep trailing spaces, as in Python); empty containers stay [] / {}.
void DumpJsonImpl(std::string& out, const Value& v, const JsonDumpOptions& o, int level) {
  CheckDepth(level);
  auto newline = [&](int lvl) {
    out.push_back('\n');
    for (int i = 0; i < lvl; ++i) out += *o.indent;
  };
  switch (v.kind()) {
    case Value::Kind::kNone:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::kFloat: {
      const double d = v.as_float();
      if (std::isnan(d)) {
        out += "NaN";
      } else if (std::isinf(d)) {
        out += d < 0 ? "-Infinity" : "Infinity";
      } else {
        out += FormatFloat(d);
      }
      return;
    }
    case Value::Kind::kString:
      AppendJsonString(out, v.str(), o.ensure_ascii);
      return;
    case Value::Kind::kList: {
      const auto& items = v.list().items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += o.item_separator;
        if (o.indent) newline(level + 1);
        DumpJsonImpl(out, items[i], o, level + 1);
      }
      if (o.indent) newline(level);
      out.push_back(']');
      return;
    }
    case Value::Kind::kDict: {
      const auto& d = v.dict();
      if (d.kind == Dict::Kind::kLoop) break;
      if (d.kind == Dict::Kind::kNamespace)
        Throw("Object of type Namespace is not JSON serializable");
      if (d.entries.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> entries;
      for (const auto& e : d.entries) entries.push_back(&e);
      if (o.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* a, const auto* b) { return a->first.Less(b->first); });
      }
      out.push_back('{');
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) out += o.item_separator;
        if (o.indent) newline(level + 1);
        AppendJsonString(out, JsonKey(entries[i]->first), o.ensure_ascii);
        out += o.key_separator;
        DumpJsonImpl(out, entries[i]->second, o, level + 1);
      }
      if (o.indent) newline(level);
      out.push_back('}');
      return;
    }
    default:
      break;
  }
  Throw("Object of type " + v.TypeName() + " is not JSON serializable");
}
}  // namespace

std::string DumpJsonValue(const Value& v, const JsonDumpOptions& opts) {
  std::string out;
  DumpJsonImpl(out, v, opts, 0);
  return out;
}

// Value -> JSON for callers outside the interpreter (Undefined and callables become null).
petrel::OrderedJson ToJson(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kBool:
      return v.as_bool();
    case Value::Kind::kInt:
      return v.as_int();
    case Value::Kind::kFloat:
      return v.as_float();
    case Value::Kind::kString:
      return v.str();
    case Value::Kind::kList: {
      auto arr = petrel::OrderedJson::array();
      for (const auto& e : v.list().items) arr.push_back(ToJson(e));
      return arr;
    }
    case Value::Kind::kDict: {
      auto obj = petrel::OrderedJson::object();
      for (const auto& [k, e] : v.dict().entries) obj[k.ToString()] = ToJson(e);
      return obj;
    }
    default:
      return nullptr;
  }
}

}  // namespace petrel::jinja
