// OpenAI-shaped errors for the HTTP layer: every failure a client can cause ends as
// `{"error":{"message","type","param","code"}}` with the matching HTTP status. This file owns the
// one table that maps petrel::ErrorCode to a status and an OpenAI error type, so routes never pick
// status codes by hand.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace petrel::server {

// One error as the client sees it. `param` names the offending request field ("" = none);
// `code` is a short machine-readable token ("model_not_found") or "".
struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string message;
  std::string param;
  std::string code;
};

// Maps an engine / tokenizer / template error to a client error. `param` is attached as given.
//   kInvalidArgument, kInvalidFormat, kOutOfRange, kUnsupported -> 400 invalid_request_error
//   kNotFound -> 404 not_found_error, kResourceExhausted -> 429 rate_limit_error
//   kCancelled -> 499-like 400, everything else -> 500 internal_error.
ApiError ToApiError(const Error& error, std::string_view param = "");

// Common errors with fixed shapes.
ApiError BadRequest(std::string message, std::string param = "");
ApiError ModelNotFound(std::string_view model);
ApiError Unauthorized();
ApiError PayloadTooLarge(uint64_t limit_bytes);
ApiError NotFoundRoute(std::string_view method, std::string_view target);
ApiError MethodNotAllowed(std::string_view method, std::string_view target);
ApiError ServiceUnavailable(std::string message);

// The JSON body for `e` (compact, one line). `param`/`code` are null when empty, as OpenAI does.
std::string ErrorBody(const ApiError& e);

}  // namespace petrel::server
