#include "server/error_map.h"

#include "core/json_util.h"

namespace petrel::server {

ApiError ToApiError(const Error& error, std::string_view param) {
  ApiError e;
  e.message = error.message;
  e.param = std::string(param);
  switch (error.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kInvalidFormat:
    case ErrorCode::kUnsupported:
    case ErrorCode::kOutOfRange:
      e.status = 400;
      e.type = "invalid_request_error";
      break;
    case ErrorCode::kNotFound:
      e.status = 404;
      e.type = "not_found_error";
      e.code = "not_found";
      break;
    case ErrorCode::kResourceExhausted:
      // The engine's waiting queue is full: the client should back off and retry.
      e.status = 429;
      e.type = "rate_limit_error";
      e.code = "server_overloaded";
      break;
    case ErrorCode::kCancelled:
      e.status = 400;
      e.type = "invalid_request_error";
      e.code = "cancelled";
      break;
    case ErrorCode::kIo:
    case ErrorCode::kInternal:
      e.status = 500;
      e.type = "internal_error";
      break;
  }
  if (error.code == ErrorCode::kOutOfRange) e.code = "context_length_exceeded";
  return e;
}

ApiError BadRequest(std::string message, std::string param) {
  return ApiError{.status = 400,
                  .type = "invalid_request_error",
                  .message = std::move(message),
                  .param = std::move(param),
                  .code = ""};
}

ApiError ModelNotFound(std::string_view model) {
  return ApiError{.status = 404,
                  .type = "invalid_request_error",
                  .message = "The model `" + std::string(model) + "` does not exist.",
                  .param = "model",
                  .code = "model_not_found"};
}

ApiError Unauthorized() {
  return ApiError{.status = 401,
                  .type = "authentication_error",
                  .message = "Incorrect or missing API key (expected `Authorization: Bearer KEY`).",
                  .param = "",
                  .code = "invalid_api_key"};
}

ApiError PayloadTooLarge(uint64_t limit_bytes) {
  return ApiError{
      .status = 413,
      .type = "invalid_request_error",
      .message = "Request body exceeds the limit of " + std::to_string(limit_bytes) + " bytes.",
      .param = "",
      .code = "payload_too_large"};
}

ApiError NotFoundRoute(std::string_view method, std::string_view target) {
  return ApiError{.status = 404,
                  .type = "not_found_error",
                  .message = "No route for " + std::string(method) + " " + std::string(target),
                  .param = "",
                  .code = "not_found"};
}

ApiError MethodNotAllowed(std::string_view method, std::string_view target) {
  return ApiError{
      .status = 405,
      .type = "invalid_request_error",
      .message = "Method " + std::string(method) + " is not allowed on " + std::string(target),
      .param = "",
      .code = "method_not_allowed"};
}

ApiError ServiceUnavailable(std::string message) {
  return ApiError{.status = 503,
                  .type = "service_unavailable",
                  .message = std::move(message),
                  .param = "",
                  .code = "service_unavailable"};
}

std::string ErrorBody(const ApiError& e) {
  Json err = {{"message", e.message}, {"type", e.type}};
  err["param"] = e.param.empty() ? Json(nullptr) : Json(e.param);
  err["code"] = e.code.empty() ? Json(nullptr) : Json(e.code);
  return DumpJson(Json{{"error", err}});
}

}  // namespace petrel::server
