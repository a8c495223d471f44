#include "server/error_map.h"

#include <gtest/gtest.h>

#include "core/json_util.h"

namespace petrel::server {
namespace {

TEST(ErrorMapTest, StatusByCode) {
  EXPECT_EQ(ToApiError(InvalidArgument("x")).status, 400);
  EXPECT_EQ(ToApiError(OutOfRange("too long"), "messages").status, 400);
  EXPECT_EQ(ToApiError(OutOfRange("too long"), "messages").param, "messages");
  EXPECT_EQ(ToApiError(OutOfRange("too long")).code, "context_length_exceeded");
  EXPECT_EQ(ToApiError(NotFound("adapter")).status, 404);
  EXPECT_EQ(ToApiError(MakeError(ErrorCode::kResourceExhausted, "queue full")).status, 429);
  EXPECT_EQ(ToApiError(MakeError(ErrorCode::kInternal, "boom")).status, 500);
  EXPECT_EQ(ToApiError(MakeError(ErrorCode::kResourceExhausted, "q")).type, "rate_limit_error");
}

TEST(ErrorMapTest, BodyShape) {
  auto body = ParseJson(ErrorBody(ModelNotFound("gpt-4")), "body");
  ASSERT_TRUE(body.ok());
  const Json& e = (*body)["error"];
  EXPECT_EQ(e["type"], "invalid_request_error");
  EXPECT_EQ(e["code"], "model_not_found");
  EXPECT_EQ(e["param"], "model");
  EXPECT_NE(e["message"].get<std::string>().find("gpt-4"), std::string::npos);

  auto b2 = ParseJson(ErrorBody(BadRequest("bad")), "body");
  ASSERT_TRUE(b2.ok());
  EXPECT_TRUE((*b2)["error"]["param"].is_null());
  EXPECT_TRUE((*b2)["error"]["code"].is_null());
}

TEST(ErrorMapTest, FixedErrors) {
  EXPECT_EQ(Unauthorized().status, 401);
  EXPECT_EQ(PayloadTooLarge(10).status, 413);
  EXPECT_EQ(ServiceUnavailable("loading").status, 503);
  EXPECT_EQ(NotFoundRoute("GET", "/x").status, 404);
}

}  // namespace
}  // namespace petrel::server
