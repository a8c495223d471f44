// Python methods reachable from templates (`s.startswith(...)`, `d.items()`, ...) and the builtin
// globals (range, namespace, dict, raise_exception, strftime_now).
//
// Only non-mutating methods exist: like jinja2's ImmutableSandboxedEnvironment (which transformers
// uses), list.append / dict.update and friends are refused with a security error.
#include <algorithm>
#include <cstdio>
#include <ctime>

#include "template/interpreter.h"
#include "template/operators.h"
#include "template/utf8.h"

namespace petrel::jinja {

namespace {

using Method = Value (*)(Interpreter&, const Value& self, CallArgs&);

// ---- str ----------------------------------------------------------------------------------------

std::u32string Chars(const Value& s) { return utf8::Decode(s.str()); }

// Resolves Python's optional [start, end] arguments to a code-point range of `n`.
void Range(const ArgBinder& b, size_t first, int64_t n, int64_t& lo, int64_t& hi) {
  lo = 0;
  hi = n;
  auto clamp = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  if (const Value* s = b.Get(first); s && !s->is_none()) lo = clamp(RequireInt(*s, "start"));
  if (const Value* e = b.Get(first + 1); e && !e->is_none()) hi = clamp(RequireInt(*e, "end"));
}

// str.startswith / str.endswith(prefix or tuple of prefixes, start=None, end=None).
Value SStartsEnds(const Value& self, CallArgs& a, bool ends) {
  ArgBinder b(a, ends ? "endswith" : "startswith", {"prefix", "start", "end"});
  if (!b.Get(0)) Throw("startswith/endswith need an argument");
  const std::u32string s = Chars(self);
  int64_t lo, hi;
  Range(b, 1, static_cast<int64_t>(s.size()), lo, hi);
  const std::u32string_view view = lo <= hi ? std::u32string_view(s).substr(lo, hi - lo) : U"";
  std::vector<Value> options;
  if (b.Get(0)->is_list()) {
    options = b.Get(0)->list().items;
  } else {
    options.push_back(*b.Get(0));
  }
  for (const auto& o : options) {
    const std::u32string p = utf8::Decode(RequireString(o, "startswith"));
    if (p.size() > view.size()) continue;
    if (ends ? view.substr(view.size() - p.size()) == p : view.substr(0, p.size()) == p)
      return Value(true);
  }
  return Value(false);
}
Value SStartswith(Interpreter&, const Value& s, CallArgs& a) { return SStartsEnds(s, a, false); }
Value SEndswith(Interpreter&, const Value& s, CallArgs& a) { return SStartsEnds(s, a, true); }

// str.split / str.rsplit(sep=None, maxsplit=-1). Without sep, runs of whitespace separate
// and empty strings are dropped; with sep, empty fields are kept.
Value SSplitImpl(Interpreter& in, const Value& self, CallArgs& a, bool from_right) {
  ArgBinder b(a, from_right ? "rsplit" : "split", {"sep", "maxsplit"});
  int64_t maxsplit = b.Get(1) ? RequireInt(*b.Get(1), "maxsplit") : -1;
  std::vector<Value> out;
  const std::string& s = self.str();
  if (!b.Get(0) || b.Get(0)->is_none()) {
    // Runs of whitespace separate; leading/trailing whitespace is ignored.
    std::u32string cs = utf8::Decode(s);
    if (from_right) std::reverse(cs.begin(), cs.end());
    std::vector<std::u32string> parts;
    size_t i = 0;
    while (i < cs.size()) {
      while (i < cs.size() && utf8::IsSpace(cs[i])) ++i;
      if (i >= cs.size()) break;
      if (maxsplit == 0) {
        size_t e = cs.size();
        while (e > i && utf8::IsSpace(cs[e - 1])) --e;
        parts.push_back(cs.substr(i, e - i));
        break;
      }
      size_t j = i;
      while (j < cs.size() && !utf8::IsSpace(cs[j])) ++j;
      parts.push_back(cs.substr(i, j - i));
      --maxsplit;
      i = j;
    }
    if (from_right) {
      std::reverse(parts.begin(), parts.end());
      for (auto& p : parts) std::reverse(p.begin(), p.end());
    }
    for (auto& p : parts) out.emplace_back(utf8::Encode(p));
    in.Step(static_cast<int64_t>(out.size()));
    return Value::MakeList(std::move(out));
  }
  const std::string sep = RequireString(*b.Get(0), "split");
  if (sep.empty()) Throw("empty separator");
  if (!from_right) {
    size_t pos = 0;
    while (maxsplit != 0) {
      const size_t hit = s.find(sep, pos);
      if (hit == std::string::npos) break;
      out.emplace_back(s.substr(pos, hit - pos));
      pos = hit + sep.size();
      --maxsplit;
    }
    out.emplace_back(s.substr(pos));
  } else {
    size_t end = s.size();
    while (maxsplit != 0 && end >= sep.size()) {
      const size_t hit = s.rfind(sep, end - sep.size());
      if (hit == std::string::npos) break;
      out.emplace_back(s.substr(hit + sep.size(), end - hit - sep.size()));
      end = hit;
      --maxsplit;
    }
    out.emplace_back(s.substr(0, end));
    std::reverse(out.begin(), out.end());
  }
  in.Step(static_cast<int64_t>(out.size()));
  return Value::MakeList(std::move(out));
}
Value SSplit(Interpreter& in, const Value& s, CallArgs& a) { return SSplitImpl(in, s, a, false); }
Value SRsplit(Interpreter& in, const Value& s, CallArgs& a) { return SSplitImpl(in, s, a, true); }

// str.strip / lstrip / rstrip(chars=None) over code points.
Value SStripImpl(const Value& self, CallArgs& a, bool left, bool right) {
  ArgBinder b(a, "strip", {"chars"});
  const std::u32string cs = Chars(self);
  std::u32string set;
  const bool ws = !b.Get(0) || b.Get(0)->is_none();
  if (!ws) set = utf8::Decode(RequireString(*b.Get(0), "strip"));
  auto strip_me = [&](char32_t c) {
    return ws ? utf8::IsSpace(c) : set.find(c) != std::u32string::npos;
  };
  size_t lo = 0, hi = cs.size();
  if (left) {
    while (lo < hi && strip_me(cs[lo])) ++lo;
  }
  if (right) {
    while (hi > lo && strip_me(cs[hi - 1])) --hi;
  }
  return Value(utf8::Encode(std::u32string_view(cs).substr(lo, hi - lo)));
}
Value SStrip(Interpreter&, const Value& s, CallArgs& a) { return SStripImpl(s, a, true, true); }
Value SLstrip(Interpreter&, const Value& s, CallArgs& a) { return SStripImpl(s, a, true, false); }
Value SRstrip(Interpreter&, const Value& s, CallArgs& a) { return SStripImpl(s, a, false, true); }

Value SUpper(Interpreter&, const Value& s, CallArgs&) { return Value(utf8::Upper(s.str())); }
Value SLower(Interpreter&, const Value& s, CallArgs&) { return Value(utf8::Lower(s.str())); }

Value STitle(Interpreter&, const Value& s, CallArgs&) {
  // CPython str.title(): uppercase a cased char after an uncased one, lowercase the rest.
  std::u32string cs = Chars(s);
  bool prev_cased = false;
  for (auto& c : cs) {
    if (utf8::IsCased(c)) {
      c = prev_cased ? utf8::ToLower(c) : utf8::ToTitle(c);
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return Value(utf8::Encode(cs));
}

Value SCapitalize(Interpreter&, const Value& s, CallArgs&) {
  std::u32string cs = Chars(s);
  for (size_t i = 0; i < cs.size(); ++i)
    cs[i] = i == 0 ? utf8::ToTitle(cs[i]) : utf8::ToLower(cs[i]);
  return Value(utf8::Encode(cs));
}

Value SReplace(Interpreter& in, const Value& s, CallArgs& a) {
  // Same semantics as the replace filter; reuse it.
  return in.ApplyFilter("replace", s, a);
}

// str.find / rfind (-1 when absent) and str.index (error when absent); code point indices.
Value SFindImpl(const Value& self, CallArgs& a, bool reverse, bool raise) {
  ArgBinder b(a, "find", {"sub", "start", "end"});
  if (!b.Get(0)) Throw("find() needs an argument");
  const std::u32string s = Chars(self);
  const std::u32string sub = utf8::Decode(RequireString(*b.Get(0), "find"));
  int64_t lo, hi;
  Range(b, 1, static_cast<int64_t>(s.size()), lo, hi);
  int64_t found = -1;
  if (hi - lo >= static_cast<int64_t>(sub.size())) {
    const std::u32string_view view = std::u32string_view(s).substr(lo, hi - lo);
    const size_t r = reverse ? view.rfind(sub) : view.find(sub);
    if (r != std::u32string_view::npos) found = lo + static_cast<int64_t>(r);
  }
  if (found < 0 && raise) Throw("substring not found");
  return Value(found);
}
Value SFind(Interpreter&, const Value& s, CallArgs& a) { return SFindImpl(s, a, false, false); }
Value SRfind(Interpreter&, const Value& s, CallArgs& a) { return SFindImpl(s, a, true, false); }
Value SIndex(Interpreter&, const Value& s, CallArgs& a) { return SFindImpl(s, a, false, true); }

// str.count(sub): non-overlapping occurrences; "" counts len+1 like Python.
Value SCount(Interpreter&, const Value& self, CallArgs& a) {
  ArgBinder b(a, "count", {"sub"});
  if (!b.Get(0)) Throw("count() needs an argument");
  const std::string sub = RequireString(*b.Get(0), "count");
  const std::string& s = self.str();
  if (sub.empty()) return Value(static_cast<int64_t>(utf8::Length(s) + 1));
  int64_t n = 0;
  for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size())) ++n;
  return Value(n);
}

// str.join(iterable): every item must already be a str (Python raises otherwise).
Value SJoin(Interpreter& in, const Value& self, CallArgs& a) {
  ArgBinder b(a, "join", {"iterable"});
  if (!b.Get(0)) Throw("join() needs an argument");
  std::string out;
  bool first = true;
  for (const auto& item : in.Iterate(*b.Get(0))) {
    if (!item.is_string())
      Throw("sequence item: expected str instance, " + item.TypeName() + " found");
    if (!first) out += self.str();
    first = false;
    out += item.str();
    in.CheckSize(out.size());
  }
  return Value(std::move(out));
}

// A minimal format-spec: [[fill]align][width][.precision][type], type in s d f.
std::string ApplySpec(const Value& v, const std::string& spec) {
  if (spec.empty()) return v.ToString();
  size_t i = 0;
  char fill = ' ', align = '\0';
  if (spec.size() >= 2 && std::string_view("<>^").find(spec[1]) != std::string_view::npos) {
    fill = spec[0];
    align = spec[1];
    i = 2;
  } else if (std::string_view("<>^").find(spec[0]) != std::string_view::npos) {
    align = spec[0];
    i = 1;
  }
  size_t width = 0;
  while (i < spec.size() && isdigit(static_cast<unsigned char>(spec[i])))
    width = width * 10 + (spec[i++] - '0');
  int precision = -1;
  if (i < spec.size() && spec[i] == '.') {
    precision = 0;
    ++i;
    while (i < spec.size() && isdigit(static_cast<unsigned char>(spec[i])))
      precision = precision * 10 + (spec[i++] - '0');
  }
  const char type = i < spec.size() ? spec[i++] : '\0';
  if (i != spec.size() || width > 4096) Throw("unsupported format spec '" + spec + "'");
  std::string body;
  if (type == 'f' || (precision >= 0 && v.is_number() && type == '\0')) {
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", precision < 0 ? 6 : std::min(precision, 100),
                  v.to_double());
    body = buf;
  } else if (type == 'd') {
    body = std::to_string(RequireInt(v, "format"));
  } else {
    body = v.ToString();
    if (precision >= 0) body = utf8::Encode(utf8::Decode(body).substr(0, precision));
  }
  const size_t len = utf8::Length(body);
  if (len >= width) return body;
  if (align == '\0') align = v.is_number() ? '>' : '<';
  const size_t pad = width - len;
  if (align == '<') return body + std::string(pad, fill);
  if (align == '>') return std::string(pad, fill) + body;
  return std::string(pad / 2, fill) + body + std::string(pad - pad / 2, fill);
}

// str.format: {} / {0} / {name} fields, {{ and }} escapes, !r / !s conversions, and the
// format specs of ApplySpec.
Value SFormat(Interpreter& in, const Value& self, CallArgs& a) {
  const std::string& f = self.str();
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const char c = f[i];
    if (c == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}')
        ++i;
      else
        Throw("Single '}' encountered in format string");
      out.push_back('}');
      continue;
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < f.size() && f[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    const size_t close = f.find('}', i);
    if (close == std::string::npos) Throw("Single '{' encountered in format string");
    std::string field = f.substr(i + 1, close - i - 1);
    i = close;
    std::string spec;
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    bool repr = false;
    if (field.size() >= 2 && field[field.size() - 2] == '!') {
      repr = field.back() == 'r';
      field.resize(field.size() - 2);
    }
    Value v;
    if (field.empty() || std::all_of(field.begin(), field.end(), ::isdigit)) {
      const size_t idx = field.empty() ? auto_idx++ : std::stoul(field);
      if (idx >= a.positional.size())
        Throw("Replacement index " + std::to_string(idx) + " out of range");
      v = a.positional[idx];
    } else {
      auto it = std::find_if(a.keyword.begin(), a.keyword.end(),
                             [&](const auto& kv) { return kv.first == field; });
      if (it == a.keyword.end()) Throw("KeyError: '" + field + "'");
      v = it->second;
    }
    out += repr ? v.Repr() : ApplySpec(v, spec);
    in.CheckSize(out.size());
  }
  return Value(std::move(out));
}

template <bool (*Pred)(char32_t)>
Value SIs(Interpreter&, const Value& s, CallArgs&) {
  const std::u32string cs = Chars(s);
  return Value(!cs.empty() && std::all_of(cs.begin(), cs.end(), Pred));
}
bool IsAlnum(char32_t c) { return utf8::IsAlpha(c) || utf8::IsDigit(c); }

Value SIsLowerUpper(const Value& s, bool lower) {
  bool cased = false;
  for (char32_t c : Chars(s)) {
    if (lower ? utf8::IsUpper(c) : utf8::IsLower(c)) return Value(false);
    cased = cased || (lower ? utf8::IsLower(c) : utf8::IsUpper(c));
  }
  return Value(cased);
}
Value SIsLower(Interpreter&, const Value& s, CallArgs&) { return SIsLowerUpper(s, true); }
Value SIsUpper(Interpreter&, const Value& s, CallArgs&) { return SIsLowerUpper(s, false); }

// str.splitlines(keepends=False) on \n, \r\n and \r.
Value SSplitlines(Interpreter&, const Value& self, CallArgs& a) {
  ArgBinder b(a, "splitlines", {"keepends"});
  const bool keep = b.Get(0) && b.Get(0)->Truthy();
  std::vector<Value> out;
  const std::string& s = self.str();
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\n' && s[i] != '\r') continue;
    size_t end = i + 1;
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') end = i + 2;
    out.emplace_back(s.substr(start, (keep ? end : i) - start));
    start = end;
    i = end - 1;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return Value::MakeList(std::move(out));
}

// ---- dict / list ------------------------------------------------------------------------------

// dict.get(key, default=None), keys(), values(), items(), copy(): read-only views as lists.
Value DGet(Interpreter&, const Value& self, CallArgs& a) {
  ArgBinder b(a, "get", {"key", "default"});
  if (!b.Get(0)) Throw("get() needs a key");
  const Value* v = self.dict().Find(*b.Get(0));
  return v ? *v : b.GetOr(1, Value::None());
}
Value DItems(Interpreter& in, const Value& self, CallArgs& a) {
  return in.ApplyFilter("items", self, a);
}
Value DKeys(Interpreter&, const Value& self, CallArgs&) {
  std::vector<Value> out;
  for (const auto& [k, v] : self.dict().entries) out.push_back(k);
  return Value::MakeList(std::move(out));
}
Value DValues(Interpreter&, const Value& self, CallArgs&) {
  std::vector<Value> out;
  for (const auto& [k, v] : self.dict().entries) out.push_back(v);
  return Value::MakeList(std::move(out));
}
Value DCopy(Interpreter&, const Value& self, CallArgs&) {
  Value d = Value::MakeDict();
  d.mutable_dict().entries = self.dict().entries;
  return d;
}

// list.index(value) / list.count(value) with Python equality.
Value LIndex(Interpreter&, const Value& self, CallArgs& a) {
  ArgBinder b(a, "index", {"value"});
  if (!b.Get(0)) Throw("index() needs an argument");
  const auto& items = self.list().items;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].Equals(*b.Get(0))) return Value(static_cast<int64_t>(i));
  }
  Throw(b.Get(0)->Repr() + " is not in list");
}
Value LCount(Interpreter&, const Value& self, CallArgs& a) {
  ArgBinder b(a, "count", {"value"});
  if (!b.Get(0)) Throw("count() needs an argument");
  return Value(
      static_cast<int64_t>(std::count_if(self.list().items.begin(), self.list().items.end(),
                                         [&](const Value& v) { return v.Equals(*b.Get(0)); })));
}

struct MethodEntry {
  const char* name;
  Method fn;
};
constexpr MethodEntry kStrMethods[] = {
    {"startswith", SStartswith},
    {"endswith", SEndswith},
    {"split", SSplit},
    {"rsplit", SRsplit},
    {"strip", SStrip},
    {"lstrip", SLstrip},
    {"rstrip", SRstrip},
    {"upper", SUpper},
    {"lower", SLower},
    {"title", STitle},
    {"capitalize", SCapitalize},
    {"replace", SReplace},
    {"find", SFind},
    {"rfind", SRfind},
    {"index", SIndex},
    {"count", SCount},
    {"join", SJoin},
    {"format", SFormat},
    {"isdigit", SIs<utf8::IsDigit>},
    {"isalpha", SIs<utf8::IsAlpha>},
    {"isalnum", SIs<IsAlnum>},
    {"isspace", SIs<utf8::IsSpace>},
    {"islower", SIsLower},
    {"isupper", SIsUpper},
    {"splitlines", SSplitlines},
};
constexpr MethodEntry kDictMethods[] = {
    {"get", DGet}, {"items", DItems}, {"keys", DKeys}, {"values", DValues}, {"copy", DCopy},
};
constexpr MethodEntry kListMethods[] = {{"index", LIndex}, {"count", LCount}};

constexpr const char* kUnsafeDict[] = {"clear", "pop", "popitem", "setdefault", "update"};
constexpr const char* kUnsafeList[] = {"append", "clear",  "extend",  "insert",
                                       "pop",    "remove", "reverse", "sort"};

template <size_t N>
Method Lookup(const MethodEntry (&table)[N], const std::string& name) {
  for (const auto& m : table) {
    if (name == m.name) return m.fn;
  }
  return nullptr;
}

}  // namespace

// Methods are bound at lookup: `s.split` yields a callable holding `s`, as Python does.
std::optional<Value> GetMethod(const Value& obj, const std::string& name) {
  Method m = nullptr;
  if (obj.is_string()) {
    m = Lookup(kStrMethods, name);
  } else if (obj.is_mapping()) {
    m = Lookup(kDictMethods, name);
    for (const char* u : kUnsafeDict) {
      if (name == u) Throw("access to attribute '" + name + "' of 'dict' object is unsafe.");
    }
  } else if (obj.is_list() && !obj.list().is_tuple) {
    m = Lookup(kListMethods, name);
    for (const char* u : kUnsafeList) {
      if (name == u) Throw("access to attribute '" + name + "' of 'list' object is unsafe.");
    }
  } else if (obj.is_list()) {
    m = Lookup(kListMethods, name);
  }
  if (!m) return std::nullopt;
  Value self = obj;
  return Value::MakeCallable(name,
                             [self, m](Interpreter& in, CallArgs& a) { return m(in, self, a); });
}

// ---- globals ------------------------------------------------------------------------------------

namespace {

// range(stop) / range(start, stop[, step]) as a list, refused beyond max_range items
// (jinja2's sandbox MAX_RANGE is 100000 too).
Value GRange(Interpreter& in, CallArgs& a) {
  if (!a.keyword.empty()) Throw("range() takes no keyword arguments");
  int64_t start = 0, stop = 0, step = 1;
  const auto& p = a.positional;
  if (p.size() == 1) {
    stop = RequireInt(p[0], "range");
  } else if (p.size() == 2 || p.size() == 3) {
    start = RequireInt(p[0], "range");
    stop = RequireInt(p[1], "range");
    if (p.size() == 3) step = RequireInt(p[2], "range");
  } else {
    Throw("range expected 1 to 3 arguments, got " + std::to_string(p.size()));
  }
  if (step == 0) Throw("range() arg 3 must not be zero");
  const __int128 span =
      step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
  const __int128 count =
      span <= 0 ? 0 : (span + (step > 0 ? step : -step) - 1) / (step > 0 ? step : -step);
  if (count > in.options().limits.max_range) {
    ThrowLimit("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" +
               std::to_string(in.options().limits.max_range) + ").");
  }
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(count));
  for (int64_t i = 0, v = start; i < static_cast<int64_t>(count); ++i, v += step)
    out.emplace_back(v);
  in.Step(static_cast<int64_t>(count));
  return Value::MakeList(std::move(out));
}

// namespace(...) / dict(...): a mapping from a positional dict and/or keyword arguments.
Value MakeMapping(CallArgs& a, Dict::Kind kind) {
  Value d = Value::MakeDict(kind);
  for (const auto& p : a.positional) {
    if (!p.is_mapping()) Throw("namespace()/dict() positional argument must be a dict");
    for (const auto& [k, v] : p.dict().entries) d.mutable_dict().Set(k, v);
  }
  for (auto& [k, v] : a.keyword) d.mutable_dict().Set(Value(k), v);
  return d;
}

// raise_exception(message): transformers' global; becomes a kInvalidArgument error.
Value GRaise(Interpreter&, CallArgs& a) {
  std::string msg = a.positional.empty() ? std::string() : a.positional[0].ToString();
  throw TemplateException{std::move(msg), 0, 0, TemplateException::Kind::kRaised};
}

// strftime_now(format): transformers' global; uses the injected clock when set (UTC).
Value GStrftimeNow(Interpreter& in, CallArgs& a) {
  if (a.positional.size() != 1) Throw("strftime_now() takes one format argument");
  const std::string fmt = RequireString(a.positional[0], "strftime_now");
  std::tm tm{};
  if (in.options().now_unix_seconds) {
    const std::time_t t = static_cast<std::time_t>(*in.options().now_unix_seconds);
    gmtime_r(&t, &tm);
  } else {
    const std::time_t t = std::time(nullptr);
    localtime_r(&t, &tm);
  }
  if (fmt.empty()) return Value("");
  char buf[512];
  const size_t n = std::strftime(buf, sizeof(buf), fmt.c_str(), &tm);
  if (n == 0) Throw("strftime_now(): format produced no output or is too long");
  return Value(std::string(buf, n));
}

}  // namespace

Value MakeBuiltinGlobals() {
  Value g = Value::MakeDict();
  Dict& d = g.mutable_dict();
  d.Set(Value("range"), Value::MakeCallable("range", GRange));
  d.Set(Value("namespace"), Value::MakeCallable("namespace", [](Interpreter& in, CallArgs& a) {
          Value ns = MakeMapping(a, Dict::Kind::kNamespace);
          in.TrackNamespace(ns);
          return ns;
        }));
  d.Set(Value("dict"), Value::MakeCallable("dict", [](Interpreter&, CallArgs& a) {
          return MakeMapping(a, Dict::Kind::kDict);
        }));
  d.Set(Value("raise_exception"), Value::MakeCallable("raise_exception", GRaise));
  d.Set(Value("strftime_now"), Value::MakeCallable("strftime_now", GStrftimeNow));
  return g;
}

}  // namespace petrel::jinja
