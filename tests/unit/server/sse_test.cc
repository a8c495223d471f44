#include "server/sse.h"

#include <gtest/gtest.h>

namespace petrel::server {
namespace {

TEST(SseTest, Framing) {
  EXPECT_EQ(SseEvent("{\"a\":1}"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(SseDone(), "data: [DONE]\n\n");
  EXPECT_EQ(SseEvent("a\nb"), "data: a\ndata: b\n\n");
}

TEST(SseTest, ParserRoundTripAnySplit) {
  std::string stream = SseEvent("{\"x\":\"1\"}") + SseEvent("two\nlines") + SseDone();
  for (size_t step = 1; step <= stream.size(); ++step) {
    SseParser p;
    std::vector<std::string> events;
    for (size_t i = 0; i < stream.size(); i += step) {
      for (auto& e : p.Feed(std::string_view(stream).substr(i, step))) events.push_back(e);
    }
    ASSERT_EQ(events.size(), 3u) << step;
    EXPECT_EQ(events[0], "{\"x\":\"1\"}");
    EXPECT_EQ(events[1], "two\nlines");
    EXPECT_EQ(events[2], "[DONE]");
  }
}

TEST(SseTest, ParserIgnoresCommentsAndCrLf) {
  SseParser p;
  auto ev = p.Feed(": keep-alive\r\n\r\ndata:x\r\n\r\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0], "x");
}

}  // namespace
}  // namespace petrel::server
