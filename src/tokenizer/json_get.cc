// Checked accessors: nlohmann's get<T>() throws on a type mismatch; these check first and
// return an Error naming the path, so no exception ever leaves the tokenizer module.
#include "tokenizer/json_get.h"

#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

const Json* Find(const Json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::string> GetString(const Json& j, std::string_view key, std::string_view path) {
  const Json* v = Find(j, key);
  if (v == nullptr) return FormatError(path, "missing field \"", key, "\"");
  if (!v->is_string()) return FormatError(path, "field \"", key, "\" must be a string");
  return v->get<std::string>();
}

Result<std::string> GetStringOr(const Json& j, std::string_view key, std::string_view path,
                                std::string def) {
  const Json* v = Find(j, key);
  if (v == nullptr) return def;
  if (!v->is_string()) return FormatError(path, "field \"", key, "\" must be a string");
  return v->get<std::string>();
}

Result<bool> GetBoolOr(const Json& j, std::string_view key, std::string_view path, bool def) {
  const Json* v = Find(j, key);
  if (v == nullptr) return def;
  if (!v->is_boolean()) return FormatError(path, "field \"", key, "\" must be a boolean");
  return v->get<bool>();
}

Result<int64_t> GetIntOr(const Json& j, std::string_view key, std::string_view path, int64_t def) {
  const Json* v = Find(j, key);
  if (v == nullptr) return def;
  if (!v->is_number_integer()) return FormatError(path, "field \"", key, "\" must be an integer");
  return v->get<int64_t>();
}

Result<std::string> GetType(const Json& j, std::string_view path) {
  if (!j.is_object()) return FormatError(path, "must be an object");
  return GetString(j, "type", path);
}

// Regex compile errors get the component path prepended ("pre_tokenizer.pretokenizers[0]").
Result<Regex> GetPattern(const Json& j, std::string_view key, std::string_view path) {
  const Json* v = Find(j, key);
  if (v == nullptr) return FormatError(path, "missing field \"", key, "\"");
  std::string text;
  bool literal = true;
  if (v->is_string()) {
    text = v->get<std::string>();
  } else if (v->is_object() && Find(*v, "String") && Find(*v, "String")->is_string()) {
    text = (*v)["String"].get<std::string>();
  } else if (v->is_object() && Find(*v, "Regex") && Find(*v, "Regex")->is_string()) {
    text = (*v)["Regex"].get<std::string>();
    literal = false;
  } else {
    return FormatError(path, "field \"", key, "\" must be {\"String\": ...} or {\"Regex\": ...}");
  }
  auto re = Regex::Compile(text, literal);
  if (!re.ok()) return re.error().WithContext(std::string("tokenizer.json: ") + std::string(path));
  return re;
}

Result<char32_t> GetChar(const Json& j, std::string_view key, std::string_view path, char32_t def) {
  const Json* v = Find(j, key);
  if (v == nullptr) return def;
  if (!v->is_string()) return FormatError(path, "field \"", key, "\" must be a string");
  std::string s = v->get<std::string>();
  size_t i = 0;
  if (s.empty() || !utf8::IsValid(s) || (utf8::Next(s, i), i != s.size())) {
    return FormatError(path, "field \"", key, "\" must be exactly one character");
  }
  i = 0;
  return utf8::Next(s, i);
}

}  // namespace petrel::tokenizer
