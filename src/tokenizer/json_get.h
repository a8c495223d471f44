// Typed access to nlohmann::json members for the tokenizer loader. Every accessor checks the
// type itself (nlohmann would throw) and returns an Error that names the full path of the field,
// e.g. `tokenizer.json: pre_tokenizer.pretokenizers[1]: field "behavior" must be a string`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/regex.h"

namespace petrel::tokenizer {

// The member `key` of object `j` (which must be an object), or nullptr when absent or null.
const Json* Find(const Json& j, std::string_view key);

// Required string member.
Result<std::string> GetString(const Json& j, std::string_view key, std::string_view path);
// Optional string member: `def` when absent or null.
Result<std::string> GetStringOr(const Json& j, std::string_view key, std::string_view path,
                                std::string def);
Result<bool> GetBoolOr(const Json& j, std::string_view key, std::string_view path, bool def);
Result<int64_t> GetIntOr(const Json& j, std::string_view key, std::string_view path, int64_t def);
// The "type" member every component object carries.
Result<std::string> GetType(const Json& j, std::string_view path);

// A pattern object {"String": "..."} or {"Regex": "..."} compiled with PCRE2; a bare string is
// taken as a literal (older files).
Result<Regex> GetPattern(const Json& j, std::string_view key, std::string_view path);

// A single Unicode character given as a one-character string (Strip.content,
// Metaspace.replacement).
Result<char32_t> GetChar(const Json& j, std::string_view key, std::string_view path, char32_t def);

// Error constructor with the standard prefix.
template <typename... Args>
Error FormatError(std::string_view path, Args&&... args) {
  return InvalidFormat("tokenizer.json: ", path, ": ", std::forward<Args>(args)...);
}

}  // namespace petrel::tokenizer
