#include "cli/flags.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace petrel::cli {

namespace {
template <typename T>
Result<T> ParseNumber(const std::string& name, const std::string& v) {
  T out{};
  const char* b = v.data();
  const char* e = v.data() + v.size();
  std::from_chars_result r;
  if constexpr (std::is_floating_point_v<T>) {
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size()) {
      return InvalidArgument("--", name, ": expected a number, got \"", v, "\"");
    }
    return (T)d;
  } else {
    r = std::from_chars(b, e, out);
    if (r.ec != std::errc() || r.ptr != e) {
      return InvalidArgument("--", name, ": expected an integer, got \"", v, "\"");
    }
    return out;
  }
}
}  // namespace

Flags& Flags::Add(std::string name, std::string* out, std::string help) {
  flags_.push_back({name, help, false, [out](const std::string& v) -> Status {
                      *out = v;
                      return OkStatus();
                    }});
  return *this;
}
Flags& Flags::Add(std::string name, std::vector<std::string>* out, std::string help) {
  flags_.push_back({name, help, false, [out](const std::string& v) -> Status {
                      out->push_back(v);
                      return OkStatus();
                    }});
  return *this;
}
#define PETREL_NUMERIC_FLAG(T)                                                     \
  Flags& Flags::Add(std::string name, T* out, std::string help) {                  \
    flags_.push_back({name, help, false, [out, name](const std::string& v) -> Status { \
                        PETREL_TRY(*out, ParseNumber<T>(name, v));                 \
                        return OkStatus();                                         \
                      }});                                                         \
    return *this;                                                                  \
  }
PETREL_NUMERIC_FLAG(int64_t)
PETREL_NUMERIC_FLAG(int)
PETREL_NUMERIC_FLAG(double)
PETREL_NUMERIC_FLAG(float)
#undef PETREL_NUMERIC_FLAG

Flags& Flags::AddSwitch(std::string name, bool* out, std::string help) {
  flags_.push_back({name, help, true, [out](const std::string&) -> Status {
                      *out = true;
                      return OkStatus();
                    }});
  return *this;
}

Status Flags::Parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = std::find_if(flags_.begin(), flags_.end(), [&](const Flag& f) { return f.name == name; });
    if (it == flags_.end()) return InvalidArgument("unknown flag --", name, "\n", Usage());
    if (!it->is_switch && !has_value) {
      if (i + 1 >= argc) return InvalidArgument("flag --", name, " needs a value");
      value = argv[++i];
    }
    PETREL_TRY(it->set(value));
    seen_.push_back(name);
  }
  return OkStatus();
}

bool Flags::Seen(const std::string& name) const {
  return std::find(seen_.begin(), seen_.end(), name) != seen_.end();
}

std::string Flags::Usage() const {
  std::string s = "usage: " + usage_ + "\n";
  for (const auto& f : flags_) {
    std::string left = "  --" + f.name + (f.is_switch ? "" : " V");
    if (left.size() < 28) left.resize(28, ' ');
    s += left + " " + f.help + "\n";
  }
  return s;
}

Result<std::vector<int32_t>> ParseIdList(const std::string& s) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    std::string part = s.substr(pos, comma - pos);
    int64_t v = 0;
    auto r = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || r.ec != std::errc() || r.ptr != part.data() + part.size() || v < 0 ||
        v > INT32_MAX) {
      return InvalidArgument("bad token id \"", part, "\" in list \"", s, "\"");
    }
    ids.push_back((int32_t)v);
    pos = comma + 1;
  }
  return ids;
}

}  // namespace petrel::cli
