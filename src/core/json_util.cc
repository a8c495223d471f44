#include "core/json_util.h"

#include "core/mmap_file.h"

namespace petrel {

template <typename J>
static Result<J> ParseAny(std::string_view text, std::string_view what) {
  try {
    return J::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    return InvalidFormat(what, ": invalid JSON: ", e.what());
  }
}

Result<Json> ParseJson(std::string_view text, std::string_view what) {
  return ParseAny<Json>(text, what);
}
Result<OrderedJson> ParseOrderedJson(std::string_view text, std::string_view what) {
  return ParseAny<OrderedJson>(text, what);
}

Result<Json> ReadJsonFile(const std::string& path) {
  PETREL_TRY(std::string text, ReadFile(path));
  return ParseJson(text, path);
}

std::string DumpJson(const Json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}
std::string DumpJson(const OrderedJson& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace petrel
