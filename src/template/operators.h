// Python semantics of Jinja's operators (internal to src/template): arithmetic with int/float
// promotion and floor division, string/list concatenation and repetition, `%` formatting,
// comparisons and `in`, slicing. Errors are TemplateExceptions with Python-like messages.
#pragma once

#include <optional>
#include <string>

#include "template/value.h"

namespace petrel::jinja {

class Interpreter;

// op is one of + - * / // % ** ~
Value BinaryOp(Interpreter& in, const std::string& op, const Value& a, const Value& b);
// op is one of == != < <= > >= in notin
bool CompareOp(const std::string& op, const Value& a, const Value& b);
// Python `needle in haystack`.
bool Contains(const Value& haystack, const Value& needle);
// Python slicing of a str, list or tuple.
Value SliceValue(Interpreter& in, const Value& v, std::optional<int64_t> start,
                 std::optional<int64_t> stop, std::optional<int64_t> step);
// printf-style `fmt % args` for str (%s %r %d %i %f %x %%).
std::string PercentFormat(const std::string& fmt, const Value& args);
// Throws the error an Undefined carries ("'x' is undefined", ...).
[[noreturn]] void ThrowUndefined(const Value& v);

}  // namespace petrel::jinja
