// nlohmann::json behind Result: parsing and typed field access that turn every throw into an Error
// naming the file and the field (the adapter that keeps exceptions inside this module).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"

namespace petrel {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Parses `text`; `what` names the source in the error ("config.json").
Result<Json> ParseJson(std::string_view text, std::string_view what);
Result<OrderedJson> ParseOrderedJson(std::string_view text, std::string_view what);
// Reads and parses a JSON file.
Result<Json> ReadJsonFile(const std::string& path);

// Compact JSON dump that never throws: invalid UTF-8 is replaced with U+FFFD.
std::string DumpJson(const Json& j, int indent = -1);
std::string DumpJson(const OrderedJson& j, int indent = -1);

}  // namespace petrel
