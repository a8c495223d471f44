// Jinja2 filters (jinja2/filters.py semantics) plus transformers' `tojson` override, and the
// argument-binding helpers shared by all builtins.
//
// Deviation: filters that return generators in jinja2 (map, select, selectattr, ...) return lists
// here. Templates consume them with |list, |join, |first or a for loop, where the two agree.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "template/interpreter.h"
#include "template/operators.h"
#include "template/utf8.h"

namespace petrel::jinja {

// ---------------------------------------------------------------------------------------------
// Argument helpers

ArgBinder::ArgBinder(CallArgs& args, std::string_view fn_name, std::vector<std::string_view> names)
    : bound_(names.size(), nullptr) {
  if (args.positional.size() > names.size()) {
    Throw(std::string(fn_name) + "() takes at most " + std::to_string(names.size()) +
          " argument(s), got " + std::to_string(args.positional.size()));
  }
  for (size_t i = 0; i < args.positional.size(); ++i) bound_[i] = &args.positional[i];
  for (const auto& [k, v] : args.keyword) {
    const auto it = std::find(names.begin(), names.end(), k);
    if (it == names.end())
      Throw(std::string(fn_name) + "() got an unexpected keyword argument '" + k + "'");
    const size_t idx = static_cast<size_t>(it - names.begin());
    if (bound_[idx])
      Throw(std::string(fn_name) + "() got multiple values for argument '" + k + "'");
    bound_[idx] = &v;
  }
}

std::string RequireString(const Value& v, std::string_view what) {
  if (v.is_string()) return v.str();
  if (v.is_undefined()) ThrowUndefined(v);
  Throw(std::string(what) + ": expected a string, got " + v.TypeName());
}

int64_t RequireInt(const Value& v, std::string_view what) {
  if (v.is_int() || v.is_bool()) return v.int_like();
  if (v.is_undefined()) ThrowUndefined(v);
  Throw(std::string(what) + ": expected an integer, got " + v.TypeName());
}

int64_t NormalizeIndex(int64_t i, int64_t size) { return i < 0 ? i + size : i; }

namespace {

// jinja2 soft_str: strings stay, everything else goes through str().
std::string SoftStr(const Value& v) { return v.is_string() ? v.str() : v.ToString(); }

// Python str.strip family over code points; `chars` null means whitespace.
std::string StripImpl(const std::string& s, const Value* chars, bool left, bool right) {
  const std::u32string cs = utf8::Decode(s);
  std::u32string set;
  const bool ws = !chars || chars->is_none();
  if (!ws) set = utf8::Decode(RequireString(*chars, "strip"));
  auto strip_me = [&](char32_t c) {
    return ws ? utf8::IsSpace(c) : set.find(c) != std::u32string::npos;
  };
  size_t b = 0, e = cs.size();
  if (left) {
    while (b < e && strip_me(cs[b])) ++b;
  }
  if (right) {
    while (e > b && strip_me(cs[e - 1])) --e;
  }
  return utf8::Encode(std::u32string_view(cs).substr(b, e - b));
}

// make_attrgetter: "a.b.0" walks items/attributes; integer parts index sequences.
Value GetAttrPath(Interpreter& in, const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return in.GetItem(item, attribute);
  Value cur = item;
  const std::string& path = attribute.str();
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    if (dot == std::string::npos) dot = path.size();
    const std::string part = path.substr(start, dot - start);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = numeric ? in.GetItem(cur, Value(static_cast<int64_t>(std::stoll(part))))
                  : in.GetItem(cur, Value(part));
    start = dot + 1;
  }
  return cur;
}

// Key used by sort/unique/min/max/dictsort: lower-cased strings unless case_sensitive.
Value SortKey(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(utf8::Lower(v.str()));
  return v;
}

// abs(x): int stays int (Python), float stays float; other types are a TypeError.
Value FAbs(Interpreter&, const Value& v, CallArgs&) {
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) {
    if (v.int_like() == INT64_MIN) Throw("integer overflow");
    return Value(v.int_like() < 0 ? -v.int_like() : v.int_like());
  }
  if (v.is_undefined()) ThrowUndefined(v);
  Throw("bad operand type for abs(): '" + v.TypeName() + "'");
}

// attr(name): getattr only, never item lookup, so `d|attr("k")` is undefined for dict keys.
Value FAttr(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "attr", {"name"});
  if (!b.Get(0)) Throw("attr() missing required argument 'name'");
  // Python getattr() only: dict keys are not attributes (jinja2's do_attr).
  const std::string name = RequireString(*b.Get(0), "attr");
  if (v.is_mapping()) {
    if (auto m = GetMethod(v, name)) return *m;
    return Value::Undefined("'dict object' has no attribute '" + name + "'");
  }
  return in.GetAttr(v, name);
}

// batch(n, fill_with=None): chunks of n; the last one padded only when fill_with is given.
Value FBatch(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "batch", {"linecount", "fill_with"});
  const int64_t n = b.Get(0) ? RequireInt(*b.Get(0), "batch") : 0;
  if (n <= 0) Throw("batch(): linecount must be positive");
  std::vector<Value> out, cur;
  for (auto& item : in.Iterate(v)) {
    cur.push_back(item);
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(Value::MakeList(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (const Value* fill = b.Get(1); fill && !fill->is_none()) {
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*fill);
    }
    out.push_back(Value::MakeList(std::move(cur)));
  }
  return Value::MakeList(std::move(out));
}

// capitalize: first code point titlecased, the rest lowercased (str.capitalize).
Value FCapitalize(Interpreter&, const Value& v, CallArgs&) {
  std::u32string cs = utf8::Decode(SoftStr(v));
  for (size_t i = 0; i < cs.size(); ++i)
    cs[i] = i == 0 ? utf8::ToTitle(cs[i]) : utf8::ToLower(cs[i]);
  return Value(utf8::Encode(cs));
}

// center(width=80): CPython str.center padding, extra space on the right for odd pads.
Value FCenter(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "center", {"width"});
  const int64_t width = b.Get(0) ? RequireInt(*b.Get(0), "center") : 80;
  const std::string s = SoftStr(v);
  const int64_t len = static_cast<int64_t>(utf8::Length(s));
  if (width <= len) return Value(s);
  in.CheckSize(static_cast<size_t>(width));
  // CPython: left = pad/2 + (pad & width & 1)
  const int64_t pad = width - len;
  const int64_t left = pad / 2 + (pad & width & 1);
  return Value(std::string(left, ' ') + s + std::string(pad - left, ' '));
}

// length / count: len(); Undefined has length 0, None and numbers are errors (as in Python).
Value FLength(Interpreter&, const Value& v, CallArgs&) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return Value(0);
    case Value::Kind::kString:
      return Value(static_cast<int64_t>(utf8::Length(v.str())));
    case Value::Kind::kList:
      return Value(static_cast<int64_t>(v.list().items.size()));
    case Value::Kind::kDict:
      if (v.dict().kind == Dict::Kind::kDict)
        return Value(static_cast<int64_t>(v.dict().entries.size()));
      break;
    default:
      break;
  }
  Throw("object of type '" + v.TypeName() + "' has no len()");
}

// default(value="", boolean=False): replaces Undefined (and falsy values when boolean).
Value FDefault(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b(a, "default", {"default_value", "boolean"});
  const bool boolean = b.Get(1) && b.Get(1)->Truthy();
  if (v.is_undefined() || (boolean && !v.Truthy())) return b.GetOr(0, Value(""));
  return v;
}

// dictsort(case_sensitive=False, by="key", reverse=False): sorted (key, value) tuples.
Value FDictsort(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "dictsort", {"case_sensitive", "by", "reverse"});
  if (!v.is_mapping()) Throw("dictsort(): expected a dict");
  const bool cs = b.Get(0) && b.Get(0)->Truthy();
  const std::string by = b.Get(1) ? RequireString(*b.Get(1), "dictsort") : "key";
  const bool reverse = b.Get(2) && b.Get(2)->Truthy();
  const int pos = by == "key" ? 0 : by == "value" ? 1 : -1;
  if (pos < 0) Throw("You can only sort by either \"key\" or \"value\"");
  std::vector<std::pair<Value, Value>> entries = v.dict().entries;
  in.Step(static_cast<int64_t>(entries.size()));
  std::stable_sort(entries.begin(), entries.end(), [&](const auto& x, const auto& y) {
    const Value& kx = pos == 0 ? x.first : x.second;
    const Value& ky = pos == 0 ? y.first : y.second;
    return reverse ? SortKey(ky, cs).Less(SortKey(kx, cs)) : SortKey(kx, cs).Less(SortKey(ky, cs));
  });
  std::vector<Value> out;
  for (auto& [k, val] : entries) out.push_back(Value::MakeList({k, val}, true));
  return Value::MakeList(std::move(out));
}

// escape / e: HTML-escapes like markupsafe (&, <, >, ", ' as &#34; / &#39;).
Value FEscape(Interpreter&, const Value& v, CallArgs&) {
  std::string out;
  for (char c : SoftStr(v)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return Value(std::move(out));
}

// first / last: Undefined with jinja2's message when the sequence is empty.
Value FFirst(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_list()) {
    return v.list().items.empty() ? Value::Undefined("No first item, sequence was empty.")
                                  : v.list().items.front();
  }
  auto items = in.Iterate(v);
  return items.empty() ? Value::Undefined("No first item, sequence was empty.") : items.front();
}

Value FLast(Interpreter& in, const Value& v, CallArgs&) {
  auto items = in.Iterate(v);
  return items.empty() ? Value::Undefined("No last item, sequence was empty.") : items.back();
}

// float(default=0.0): Python float() of numbers and numeric strings, else the default.
Value FFloat(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b(a, "float", {"default"});
  if (v.is_number()) return Value(v.to_double());
  if (v.is_string()) {
    const std::string s = StripImpl(v.str(), nullptr, true, true);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value(d);
  }
  return b.GetOr(0, Value(0.0));
}

// format(*args): printf-style `fmt % args` (jinja2 do_format).
Value FFormat(Interpreter& in, const Value& v, CallArgs& a) {
  if (!a.keyword.empty()) Throw("format filter: keyword arguments are not supported");
  Value args =
      a.positional.size() == 1 && !(a.positional[0].is_list() && a.positional[0].list().is_tuple)
          ? Value::MakeList({a.positional[0]}, true)
          : Value::MakeList(a.positional, true);
  std::string s = PercentFormat(SoftStr(v), args);
  in.CheckSize(s.size());
  return Value(std::move(s));
}

// indent(width=4, first=False, blank=False): jinja2 3.x semantics, including the quirk
// that a trailing newline is added before splitting and never re-emitted.
Value FIndent(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "indent", {"width", "first", "blank"});
  std::string ind = "    ";
  if (const Value* w = b.Get(0))
    ind = w->is_string() ? w->str() : std::string(RequireInt(*w, "indent"), ' ');
  const bool first = b.Get(1) && b.Get(1)->Truthy();
  const bool blank = b.Get(2) && b.Get(2)->Truthy();
  std::string s = SoftStr(v) + "\n";
  // str.splitlines() on the common separators (\n, \r\n, \r).
  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      lines.push_back(cur);
      cur.clear();
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      cur.push_back(s[i]);
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += "\n";
      if (blank || !lines[i].empty()) out += ind;
    }
    out += lines[i];
    in.CheckSize(out.size());
  }
  if (first) out = ind + out;
  return Value(std::move(out));
}

// int(default=0, base=10): ints from numbers and strings; "42.23" gives 42 via float(),
// anything unparsable gives the default (jinja2 do_int).
Value FInt(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b(a, "int", {"default", "base"});
  const int base = b.Get(1) ? static_cast<int>(RequireInt(*b.Get(1), "int")) : 10;
  if (v.is_int() || v.is_bool()) return Value(v.int_like());
  if (v.is_float()) {
    if (std::isfinite(v.as_float()) && std::fabs(v.as_float()) < 9.2e18) {
      return Value(static_cast<int64_t>(v.as_float()));
    }
  } else if (v.is_string()) {
    std::string s = StripImpl(v.str(), nullptr, true, true);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (!s.empty()) {
      errno = 0;
      char* end = nullptr;
      const long long i = std::strtoll(s.c_str(), &end, base);
      if (end == s.c_str() + s.size() && errno == 0) return Value(static_cast<int64_t>(i));
      const double d = std::strtod(s.c_str(), &end);  // "42.23"|int gives 42
      if (end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18) {
        return Value(static_cast<int64_t>(d));
      }
    }
  }
  return b.GetOr(0, Value(0));
}

// items: list of (key, value) tuples of a mapping; Undefined gives an empty list.
Value FItems(Interpreter&, const Value& v, CallArgs&) {
  if (v.is_undefined()) return Value::MakeList({});
  if (!v.is_mapping()) Throw("items(): can only get item pairs from a mapping");
  std::vector<Value> out;
  for (const auto& [k, val] : v.dict().entries) out.push_back(Value::MakeList({k, val}, true));
  return Value::MakeList(std::move(out));
}

// join(d="", attribute=None): str() of each item (or of item.attribute) joined by d.
Value FJoin(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "join", {"d", "attribute"});
  const std::string sep = b.Get(0) ? SoftStr(*b.Get(0)) : "";
  std::string out;
  bool firstItem = true;
  for (const auto& item : in.Iterate(v)) {
    if (!firstItem) out += sep;
    firstItem = false;
    out += SoftStr(b.Get(1) ? GetAttrPath(in, item, *b.Get(1)) : item);
    in.CheckSize(out.size());
  }
  return Value(std::move(out));
}

// list: Python list() of any iterable (dict keys, string characters).
Value FList(Interpreter& in, const Value& v, CallArgs&) { return Value::MakeList(in.Iterate(v)); }

Value FLower(Interpreter&, const Value& v, CallArgs&) { return Value(utf8::Lower(SoftStr(v))); }
Value FUpper(Interpreter&, const Value& v, CallArgs&) { return Value(utf8::Upper(SoftStr(v))); }

// map(attribute=..., default=...) or map("filter", *args): applies per item; returns a list.
Value FMap(Interpreter& in, const Value& v, CallArgs& a) {
  std::vector<Value> out;
  const auto items = in.Iterate(v);
  if (a.positional.empty()) {
    ArgBinder b(a, "map", {"attribute", "default"});
    if (!b.Get(0)) Throw("map(): requires a filter name or attribute=");
    for (const auto& item : items) {
      Value r = GetAttrPath(in, item, *b.Get(0));
      if (r.is_undefined() && b.Get(1)) r = *b.Get(1);
      out.push_back(std::move(r));
    }
  } else {
    const std::string name = RequireString(a.positional[0], "map");
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keyword = a.keyword;
    for (const auto& item : items) {
      CallArgs copy = rest;
      out.push_back(in.ApplyFilter(name, item, copy));
    }
  }
  return Value::MakeList(std::move(out));
}

// min / max(case_sensitive=False, attribute=None): first extreme item, Undefined if empty.
Value MinMax(Interpreter& in, const Value& v, CallArgs& a, bool want_max) {
  ArgBinder b(a, want_max ? "max" : "min", {"case_sensitive", "attribute"});
  const bool cs = b.Get(0) && b.Get(0)->Truthy();
  const auto items = in.Iterate(v);
  if (items.empty())
    return Value::Undefined(std::string("No aggregated item, sequence was empty."));
  size_t best = 0;
  auto key = [&](size_t i) {
    return SortKey(b.Get(1) ? GetAttrPath(in, items[i], *b.Get(1)) : items[i], cs);
  };
  for (size_t i = 1; i < items.size(); ++i) {
    if (want_max ? key(best).Less(key(i)) : key(i).Less(key(best))) best = i;
  }
  return items[best];
}
Value FMax(Interpreter& in, const Value& v, CallArgs& a) { return MinMax(in, v, a, true); }
Value FMin(Interpreter& in, const Value& v, CallArgs& a) { return MinMax(in, v, a, false); }

// replace(old, new, count=None): str.replace, including the empty-`old` case.
Value FReplace(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "replace", {"old", "new", "count"});
  if (!b.Get(0) || !b.Get(1)) Throw("replace() needs old and new");
  const std::string s = SoftStr(v);
  const std::string old = SoftStr(*b.Get(0));
  const std::string repl = SoftStr(*b.Get(1));
  int64_t count = b.Get(2) && !b.Get(2)->is_none() ? RequireInt(*b.Get(2), "replace") : -1;
  std::string out;
  if (old.empty()) {  // Python inserts `new` between every code point (and at both ends)
    const std::u32string cs = utf8::Decode(s);
    for (size_t i = 0; i <= cs.size(); ++i) {
      if (count != 0) {
        out += repl;
        --count;
      }
      if (i < cs.size()) utf8::Append(out, cs[i]);
      in.CheckSize(out.size());
    }
    return Value(std::move(out));
  }
  size_t pos = 0;
  while (count != 0) {
    const size_t hit = s.find(old, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += repl;
    in.CheckSize(out.size());
    pos = hit + old.size();
    --count;
  }
  out.append(s, pos, std::string::npos);
  return Value(std::move(out));
}

// reverse: reversed string, or reversed list of any iterable.
Value FReverse(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_string()) {
    std::u32string cs = utf8::Decode(v.str());
    std::reverse(cs.begin(), cs.end());
    return Value(utf8::Encode(cs));
  }
  auto items = in.Iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::MakeList(std::move(items));
}

// round(precision=0, method="common"): "common" is Python round() (ties to even, ints
// stay ints); "ceil"/"floor" scale by 10**precision.
Value FRound(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b(a, "round", {"precision", "method"});
  const int64_t precision = b.Get(0) ? RequireInt(*b.Get(0), "round") : 0;
  const std::string method = b.Get(1) ? RequireString(*b.Get(1), "round") : "common";
  if (!v.is_number()) Throw("round(): expected a number, got " + v.TypeName());
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.to_double() * scale;
  double r;
  if (method == "common") {
    if (!v.is_float()) return Value(v.int_like());  // Python round(int, n) stays an int
    r = std::nearbyint(x);                          // Python's round(): ties to even
  } else if (method == "ceil") {
    r = std::ceil(x);
  } else if (method == "floor") {
    r = std::floor(x);
  } else {
    Throw("method must be 'common', 'ceil' or 'floor'");
  }
  return Value(r / scale);
}

// safe / string: no Markup objects here (autoescape is off in transformers), so both are str().
Value FSafe(Interpreter&, const Value& v, CallArgs&) { return Value(SoftStr(v)); }
Value FString(Interpreter&, const Value& v, CallArgs&) { return Value(SoftStr(v)); }

// select / reject / selectattr / rejectattr.
Value SelectImpl(Interpreter& in, const Value& v, CallArgs& a, bool by_attr, bool keep) {
  std::vector<Value> args = a.positional;
  Value attr;
  size_t next = 0;
  if (by_attr) {
    if (args.empty()) Throw("selectattr/rejectattr need an attribute name");
    attr = args[next++];
  }
  std::string test;
  if (next < args.size()) test = RequireString(args[next++], "select");
  CallArgs test_args;
  test_args.positional.assign(args.begin() + static_cast<long>(next), args.end());
  test_args.keyword = a.keyword;
  std::vector<Value> out;
  for (const auto& item : in.Iterate(v)) {
    const Value x = by_attr ? GetAttrPath(in, item, attr) : item;
    bool ok;
    if (test.empty()) {
      ok = x.Truthy();
    } else {
      CallArgs copy = test_args;
      ok = in.ApplyTest(test, x, copy);
    }
    if (ok == keep) out.push_back(item);
  }
  return Value::MakeList(std::move(out));
}
Value FSelect(Interpreter& in, const Value& v, CallArgs& a) {
  return SelectImpl(in, v, a, false, true);
}
Value FReject(Interpreter& in, const Value& v, CallArgs& a) {
  return SelectImpl(in, v, a, false, false);
}
Value FSelectAttr(Interpreter& in, const Value& v, CallArgs& a) {
  return SelectImpl(in, v, a, true, true);
}
Value FRejectAttr(Interpreter& in, const Value& v, CallArgs& a) {
  return SelectImpl(in, v, a, true, false);
}

// sort(reverse=False, case_sensitive=False, attribute=None): stable sort on a lower-cased key
// unless case_sensitive.
Value FSort(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "sort", {"reverse", "case_sensitive", "attribute"});
  const bool reverse = b.Get(0) && b.Get(0)->Truthy();
  const bool cs = b.Get(1) && b.Get(1)->Truthy();
  auto items = in.Iterate(v);
  in.Step(static_cast<int64_t>(items.size()));
  std::vector<Value> keys;
  for (const auto& item : items)
    keys.push_back(SortKey(b.Get(2) ? GetAttrPath(in, item, *b.Get(2)) : item, cs));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return reverse ? keys[y].Less(keys[x]) : keys[x].Less(keys[y]);
  });
  std::vector<Value> out;
  for (size_t i : order) out.push_back(items[i]);
  return Value::MakeList(std::move(out));
}

// sum(attribute=None, start=0): Python sum() with our `+` (ints stay ints).
Value FSum(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "sum", {"attribute", "start"});
  Value total = b.GetOr(1, Value(0));
  for (const auto& item : in.Iterate(v)) {
    total = BinaryOp(in, "+", total, b.Get(0) ? GetAttrPath(in, item, *b.Get(0)) : item);
  }
  return total;
}

Value FTitle(Interpreter&, const Value& v, CallArgs&) {
  // jinja2 do_title: capitalize every run after -, whitespace, (, {, [ or <.
  std::u32string cs = utf8::Decode(SoftStr(v));
  bool word_start = true;
  for (auto& c : cs) {
    const bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || utf8::IsSpace(c);
    if (sep) {
      word_start = true;
    } else {
      c = word_start ? utf8::ToUpper(c) : utf8::ToLower(c);
      word_start = false;
    }
  }
  return Value(utf8::Encode(cs));
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False). No HTML escaping (unlike jinja2's builtin tojson).
Value FToJson(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions o;
  o.ensure_ascii = b.Get(0) && b.Get(0)->Truthy();
  if (const Value* ind = b.Get(1); ind && !ind->is_none()) {
    o.indent = ind->is_string()
                   ? ind->str()
                   : std::string(std::max<int64_t>(0, RequireInt(*ind, "tojson")), ' ');
    o.item_separator = ",";
  }
  if (const Value* sep = b.Get(2); sep && !sep->is_none()) {
    if (!sep->is_list() || sep->list().items.size() != 2)
      Throw("tojson(): separators must be a pair");
    o.item_separator = RequireString(sep->list().items[0], "tojson separators");
    o.key_separator = RequireString(sep->list().items[1], "tojson separators");
  }
  o.sort_keys = b.Get(3) && b.Get(3)->Truthy();
  std::string s = DumpJsonValue(v, o);
  in.CheckSize(s.size());
  return Value(std::move(s));
}

// trim(chars=None): str.strip(chars).
Value FTrim(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b(a, "trim", {"chars"});
  return Value(StripImpl(SoftStr(v), b.Get(0), true, true));
}

// unique(case_sensitive=False, attribute=None): first occurrence of each key, order kept.
Value FUnique(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "unique", {"case_sensitive", "attribute"});
  const bool cs = b.Get(0) && b.Get(0)->Truthy();
  std::vector<Value> out, seen;
  for (const auto& item : in.Iterate(v)) {
    in.Step(static_cast<int64_t>(seen.size()));
    Value key = SortKey(b.Get(1) ? GetAttrPath(in, item, *b.Get(1)) : item, cs);
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return s.Equals(key); })) {
      seen.push_back(std::move(key));
      out.push_back(item);
    }
  }
  return Value::MakeList(std::move(out));
}

// wordcount: number of \w+ runs (letters, digits, underscore).
Value FWordcount(Interpreter&, const Value& v, CallArgs&) {
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : utf8::Decode(SoftStr(v))) {
    const bool w = utf8::IsAlpha(c) || utf8::IsDigit(c) || c == '_';
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

// The filter table: name -> implementation (linear scan; ~45 entries, looked up per call).
struct FilterEntry {
  const char* name;
  FilterFn fn;
};
constexpr FilterEntry kFilters[] = {
    {"abs", FAbs},
    {"attr", FAttr},
    {"batch", FBatch},
    {"capitalize", FCapitalize},
    {"center", FCenter},
    {"count", FLength},
    {"d", FDefault},
    {"default", FDefault},
    {"dictsort", FDictsort},
    {"e", FEscape},
    {"escape", FEscape},
    {"first", FFirst},
    {"float", FFloat},
    {"forceescape", FEscape},
    {"format", FFormat},
    {"indent", FIndent},
    {"int", FInt},
    {"items", FItems},
    {"join", FJoin},
    {"last", FLast},
    {"length", FLength},
    {"list", FList},
    {"lower", FLower},
    {"map", FMap},
    {"max", FMax},
    {"min", FMin},
    {"reject", FReject},
    {"rejectattr", FRejectAttr},
    {"replace", FReplace},
    {"reverse", FReverse},
    {"round", FRound},
    {"safe", FSafe},
    {"select", FSelect},
    {"selectattr", FSelectAttr},
    {"sort", FSort},
    {"string", FString},
    {"sum", FSum},
    {"title", FTitle},
    {"tojson", FToJson},
    {"trim", FTrim},
    {"unique", FUnique},
    {"upper", FUpper},
    {"wordcount", FWordcount},
};

}  // namespace

FilterFn FindFilter(std::string_view name) {
  for (const auto& f : kFilters) {
    if (name == f.name) return f.fn;
  }
  return nullptr;
}

}  // namespace petrel::jinja
