// Operator semantics (see operators.h). Integers are int64: where Python would grow a big int we
// report an overflow error instead (chat templates never need big integers).
#include "template/operators.h"

#include <cmath>
#include <cstdio>

#include "template/interpreter.h"
#include "template/utf8.h"

namespace petrel::jinja {

void ThrowUndefined(const Value& v) {
  const std::string& m = v.undefined_message();
  Throw(m.empty() ? "value is undefined" : m);
}

namespace {

[[noreturn]] void Unsupported(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) ThrowUndefined(a);
  if (b.is_undefined()) ThrowUndefined(b);
  Throw("unsupported operand type(s) for " + op + ": '" + a.TypeName() + "' and '" + b.TypeName() +
        "'");
}

int64_t CheckedInt(bool overflow, int64_t v) {
  if (overflow) Throw("integer overflow");
  return v;
}

// Python floor division and modulo for ints (result takes the sign of the divisor).
int64_t FloorDiv(int64_t a, int64_t b) {
  if (a == INT64_MIN && b == -1) Throw("integer overflow");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t FloorMod(int64_t a, int64_t b) {
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

// str * n and list * n (n <= 0 gives an empty result), size-checked before building.
Value Repeat(Interpreter& in, const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const std::string& s = seq.str();
    if (!s.empty()) in.CheckSize(s.size() * static_cast<size_t>(std::min<int64_t>(n, INT32_MAX)));
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value(std::move(out));
  }
  const auto& items = seq.list().items;
  if (!items.empty())
    in.CheckSize(items.size() * static_cast<size_t>(std::min<int64_t>(n, INT32_MAX)));
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::MakeList(std::move(out), seq.list().is_tuple);
}

}  // namespace

// Arithmetic follows Python: int op int stays int (except /), any float makes a float, bool
// counts as int; + concatenates str/list/tuple of the same kind; ~ concatenates str() values.
Value BinaryOp(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = a.ToString();
    const std::string t = b.ToString();
    in.CheckSize(s.size() + t.size());
    return Value(s + t);
  }
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  if (op == "+") {
    if (ints) {
      int64_t r = 0;
      const bool overflow = __builtin_add_overflow(a.int_like(), b.int_like(), &r);
      return Value(CheckedInt(overflow, r));
    }
    if (nums) return Value(a.to_double() + b.to_double());
    if (a.is_string() && b.is_string()) {
      in.CheckSize(a.str().size() + b.str().size());
      return Value(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && a.list().is_tuple == b.list().is_tuple) {
      in.CheckSize(a.list().items.size() + b.list().items.size());
      std::vector<Value> items = a.list().items;
      items.insert(items.end(), b.list().items.begin(), b.list().items.end());
      return Value::MakeList(std::move(items), a.list().is_tuple);
    }
    if (a.is_string() || b.is_string()) {
      if (a.is_undefined()) ThrowUndefined(a);
      if (b.is_undefined()) ThrowUndefined(b);
      Throw(a.is_string() ? "can only concatenate str (not \"" + b.TypeName() + "\") to str"
                          : "unsupported operand type(s) for +: '" + a.TypeName() + "' and 'str'");
    }
    Unsupported(op, a, b);
  }
  if (op == "-") {
    if (ints) {
      int64_t r = 0;
      const bool overflow = __builtin_sub_overflow(a.int_like(), b.int_like(), &r);
      return Value(CheckedInt(overflow, r));
    }
    if (nums) return Value(a.to_double() - b.to_double());
    Unsupported(op, a, b);
  }
  if (op == "*") {
    if (ints) {
      int64_t r = 0;
      const bool overflow = __builtin_mul_overflow(a.int_like(), b.int_like(), &r);
      return Value(CheckedInt(overflow, r));
    }
    if (nums) return Value(a.to_double() * b.to_double());
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool()))
      return Repeat(in, a, b.int_like());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool()))
      return Repeat(in, b, a.int_like());
    Unsupported(op, a, b);
  }
  if (op == "/") {
    if (!nums) Unsupported(op, a, b);
    if (b.to_double() == 0.0) Throw("division by zero");
    return Value(a.to_double() / b.to_double());
  }
  if (op == "//") {
    if (!nums) Unsupported(op, a, b);
    if (b.to_double() == 0.0) Throw("integer division or modulo by zero");
    if (ints) return Value(FloorDiv(a.int_like(), b.int_like()));
    return Value(std::floor(a.to_double() / b.to_double()));
  }
  if (op == "%") {
    if (a.is_string()) {
      std::string s = PercentFormat(a.str(), b);
      in.CheckSize(s.size());
      return Value(std::move(s));
    }
    if (!nums) Unsupported(op, a, b);
    if (b.to_double() == 0.0) Throw("integer division or modulo by zero");
    if (ints) return Value(FloorMod(a.int_like(), b.int_like()));
    const double x = a.to_double(), y = b.to_double();
    double r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value(r);
  }
  if (op == "**") {
    if (!nums) Unsupported(op, a, b);
    if (ints && b.int_like() >= 0) {
      int64_t base = a.int_like(), exp = b.int_like(), result = 1;
      while (exp > 0) {
        in.Step();
        if ((exp & 1) && __builtin_mul_overflow(result, base, &result)) Throw("integer overflow");
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base)) Throw("integer overflow");
      }
      return Value(result);
    }
    if (a.to_double() == 0.0 && b.to_double() < 0)
      Throw("0.0 cannot be raised to a negative power");
    return Value(std::pow(a.to_double(), b.to_double()));
  }
  Throw("unknown operator " + op);
}

// Python `in`: substring for str, element for list/tuple, key for dict.
bool Contains(const Value& hay, const Value& needle) {
  switch (hay.kind()) {
    case Value::Kind::kString:
      if (!needle.is_string()) {
        if (needle.is_undefined()) ThrowUndefined(needle);
        Throw("'in <string>' requires string as left operand, not " + needle.TypeName());
      }
      return hay.str().find(needle.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const auto& item : hay.list().items) {
        if (item.Equals(needle)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return hay.dict().Find(needle) != nullptr;
    case Value::Kind::kUndefined:
      return false;  // jinja2's Undefined iterates as empty
    default:
      Throw("argument of type '" + hay.TypeName() + "' is not iterable");
  }
}

// == and != never fail; ordering comparisons fail on Undefined and on mixed types.
bool CompareOp(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return a.Equals(b);
  if (op == "!=") return !a.Equals(b);
  if (op == "in") return Contains(b, a);
  if (op == "notin") return !Contains(b, a);
  if (a.is_undefined()) ThrowUndefined(a);
  if (b.is_undefined()) ThrowUndefined(b);
  if (op == "<") return a.Less(b);
  if (op == ">") return b.Less(a);
  if (op == "<=") return !b.Less(a);
  if (op == ">=") return !a.Less(b);
  Throw("unknown comparison " + op);
}

// Python slicing with CPython's index adjustment (negative and out-of-range bounds clamp).
Value SliceValue(Interpreter& in, const Value& v, std::optional<int64_t> start,
                 std::optional<int64_t> stop, std::optional<int64_t> step_opt) {
  const int64_t step = step_opt.value_or(1);
  if (step == 0) Throw("slice step cannot be zero");
  std::u32string chars;
  int64_t n = 0;
  if (v.is_string()) {
    chars = utf8::Decode(v.str());
    n = static_cast<int64_t>(chars.size());
  } else if (v.is_list()) {
    n = static_cast<int64_t>(v.list().items.size());
  } else if (v.is_undefined()) {
    ThrowUndefined(v);
  } else {
    Throw("'" + v.TypeName() + "' object is not subscriptable");
  }
  // CPython's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> x, int64_t def) -> int64_t {
    if (!x) return def;
    int64_t i = *x;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t lo = adjust(start, step < 0 ? n - 1 : 0);
  const int64_t hi = adjust(stop, step < 0 ? -1 : n);
  std::vector<int64_t> idx;
  for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) idx.push_back(i);
  in.Step(static_cast<int64_t>(idx.size()));
  if (v.is_string()) {
    std::u32string out;
    for (int64_t i : idx) out.push_back(chars[i]);
    return Value(utf8::Encode(out));
  }
  std::vector<Value> out;
  for (int64_t i : idx) out.push_back(v.list().items[i]);
  return Value::MakeList(std::move(out), v.list().is_tuple);
}

// `fmt % args` with the conversions chat templates use; args may be a tuple or one value.
std::string PercentFormat(const std::string& fmt, const Value& args) {
  std::vector<Value> list;
  if (args.is_list() && args.list().is_tuple) {
    list = args.list().items;
  } else {
    list.push_back(args);
  }
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (++i >= fmt.size()) Throw("incomplete format");
    const char c = fmt[i];
    if (c == '%') {
      out.push_back('%');
      continue;
    }
    if (next >= list.size()) Throw("not enough arguments for format string");
    const Value& a = list[next++];
    char buf[64];
    switch (c) {
      case 's':
        out += a.ToString();
        break;
      case 'r':
        out += a.Repr();
        break;
      case 'd':
      case 'i':
        if (!a.is_number()) Throw("%d format: a real number is required, not " + a.TypeName());
        out += std::to_string(a.is_float() ? static_cast<int64_t>(a.as_float()) : a.int_like());
        break;
      case 'f':
        if (!a.is_number()) Throw("%f format: a real number is required, not " + a.TypeName());
        std::snprintf(buf, sizeof(buf), "%f", a.to_double());
        out += buf;
        break;
      case 'x':
        if (!a.is_int()) Throw("%x format: an integer is required");
        std::snprintf(buf, sizeof(buf), "%llx", static_cast<long long>(a.as_int()));
        out += buf;
        break;
      default:
        Throw(std::string("unsupported format character '") + c + "'");
    }
  }
  if (next < list.size()) Throw("not all arguments converted during string formatting");
  return out;
}

}  // namespace petrel::jinja
