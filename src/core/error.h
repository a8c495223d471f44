// Error handling for input that comes from outside (files, configs, HTTP bodies): functions return
// Result<T>, which holds either a value or an Error. Bugs and invariants use PETREL_CHECK, which
// aborts with file:line. No exceptions cross module boundaries (see ../shared/STYLE.md).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <variant>

namespace petrel {

enum class ErrorCode {
  kInvalidArgument,   // bad value from a caller or user (flag, request field)
  kInvalidFormat,     // malformed file contents (safetensors, tokenizer.json, template, ...)
  kNotFound,          // missing file, tensor, model, adapter
  kUnsupported,       // well-formed but not implemented (architecture, dtype, option)
  kOutOfRange,        // index or size beyond limits (context length, ids)
  kResourceExhausted, // memory / queue full
  kIo,                // OS-level read/write failure
  kCancelled,
  kInternal,
};

const char* ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // Returns a copy whose message is prefixed with `context: `. Used when an error crosses a layer,
  // e.g. "loading model.safetensors: tensor `x`: ...".
  Error WithContext(const std::string& context) const {
    return Error{code, context + ": " + message};
  }
  std::string ToString() const { return std::string(ErrorCodeName(code)) + ": " + message; }
};

// Convenience constructors: `return InvalidFormat("header length ", n, " exceeds file size");`
template <typename... Args>
Error MakeError(ErrorCode code, Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return Error{code, os.str()};
}
template <typename... Args>
Error InvalidArgument(Args&&... a) { return MakeError(ErrorCode::kInvalidArgument, std::forward<Args>(a)...); }
template <typename... Args>
Error InvalidFormat(Args&&... a) { return MakeError(ErrorCode::kInvalidFormat, std::forward<Args>(a)...); }
template <typename... Args>
Error NotFound(Args&&... a) { return MakeError(ErrorCode::kNotFound, std::forward<Args>(a)...); }
template <typename... Args>
Error Unsupported(Args&&... a) { return MakeError(ErrorCode::kUnsupported, std::forward<Args>(a)...); }
template <typename... Args>
Error OutOfRange(Args&&... a) { return MakeError(ErrorCode::kOutOfRange, std::forward<Args>(a)...); }
template <typename... Args>
Error IoError(Args&&... a) { return MakeError(ErrorCode::kIo, std::forward<Args>(a)...); }

// A value or an Error. Result<void> is a status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return std::get<1>(v_); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }
  void value() const {}

 private:
  std::optional<Error> e_;
};
using Status = Result<void>;
inline Status OkStatus() { return Status(); }

namespace internal {
// Streams extra context for PETREL_CHECK, then aborts in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* cond, const char* file, int line) {
    os_ << file << ":" << line << ": check failed: " << cond << " ";
  }
  [[noreturn]] ~CheckFailure() {
    std::fprintf(stderr, "%s\n", os_.str().c_str());
    std::fflush(stderr);
    std::abort();
  }
  template <typename T>
  CheckFailure& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  std::ostringstream os_;
};
}  // namespace internal

}  // namespace petrel

// Aborts with file:line and the streamed context when `cond` is false. For bugs, not user input.
#define PETREL_CHECK(cond) \
  if (cond) {              \
  } else                   \
    ::petrel::internal::CheckFailure(#cond, __FILE__, __LINE__)

#ifdef NDEBUG
#define PETREL_DCHECK(cond) \
  if (true) {               \
  } else                    \
    ::petrel::internal::CheckFailure(#cond, __FILE__, __LINE__)
#else
#define PETREL_DCHECK(cond) PETREL_CHECK(cond)
#endif

#define PETREL_CONCAT_INNER(a, b) a##b
#define PETREL_CONCAT(a, b) PETREL_CONCAT_INNER(a, b)

// PETREL_TRY(expr): returns the error from the enclosing function if `expr` failed.
// PETREL_TRY(auto x, expr): binds the value of a successful Result to `x`.
#define PETREL_TRY_1(expr)                                        \
  do {                                                            \
    auto&& petrel_try_r_ = (expr);                                \
    if (!petrel_try_r_.ok()) return petrel_try_r_.error();        \
  } while (0)
// Note: the two-argument form expands to several statements; do not use it as the body of an
// unbraced if/else.
#define PETREL_TRY_2(decl, expr) PETREL_TRY_2_IMPL(decl, expr, PETREL_CONCAT(petrel_try_, __COUNTER__))
#define PETREL_TRY_2_IMPL(decl, expr, tmp) \
  auto&& tmp = (expr);                     \
  if (!tmp.ok()) return tmp.error();       \
  decl = std::move(tmp).value()
#define PETREL_TRY_PICK(_1, _2, NAME, ...) NAME
#define PETREL_TRY(...) PETREL_TRY_PICK(__VA_ARGS__, PETREL_TRY_2, PETREL_TRY_1)(__VA_ARGS__)
