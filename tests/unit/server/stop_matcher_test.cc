#include "server/stop_matcher.h"

#include <gtest/gtest.h>

namespace petrel::server {
namespace {

// Feeds pieces one by one and returns everything emitted (including the final flush).
std::string FeedAll(StopMatcher& m, const std::vector<std::string>& pieces,
                    bool* stopped = nullptr) {
  std::string out;
  for (const auto& p : pieces) {
    auto o = m.Feed(p);
    out += o.text;
    if (o.stopped) break;
  }
  out += m.Flush();
  if (stopped) *stopped = m.stopped();
  return out;
}

TEST(StopMatcherTest, NoStopsPassesThrough) {
  StopMatcher m({});
  auto o = m.Feed("hello");
  EXPECT_EQ(o.text, "hello");
  EXPECT_FALSE(o.stopped);
}

TEST(StopMatcherTest, MatchInsideOnePiece) {
  StopMatcher m({"STOP"});
  auto o = m.Feed("abcSTOPdef");
  EXPECT_TRUE(o.stopped);
  EXPECT_EQ(o.text, "abc");
  EXPECT_EQ(o.matched, "STOP");
  EXPECT_EQ(m.Feed("more").text, "");
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopMatcherTest, MatchAcrossPiecesIsHeldBack) {
  StopMatcher m({"STOP"});
  auto o1 = m.Feed("abcST");
  EXPECT_EQ(o1.text, "abc");  // "ST" could start "STOP"
  EXPECT_EQ(m.held_bytes(), 2u);
  auto o2 = m.Feed("O");
  EXPECT_EQ(o2.text, "");
  auto o3 = m.Feed("Pxyz");
  EXPECT_TRUE(o3.stopped);
  EXPECT_EQ(o3.text, "");
}

TEST(StopMatcherTest, FalseStartIsReleased) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.Feed("abcST").text, "abc");
  EXPECT_EQ(m.Feed("AR").text, "STAR");
  EXPECT_EQ(m.held_bytes(), 0u);
}

TEST(StopMatcherTest, FlushReturnsHeldText) {
  StopMatcher m({"</end>"});
  EXPECT_EQ(m.Feed("x</e").text, "x");
  EXPECT_EQ(m.Flush(), "</e");
}

TEST(StopMatcherTest, EarliestOfSeveral) {
  StopMatcher m({"world", "o w"});
  bool stopped = false;
  EXPECT_EQ(FeedAll(m, {"hell", "o wor", "ld"}, &stopped), "hell");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcherTest, OverlappingPrefixes) {
  // "aab": after "aa" the held text must keep both a's ("aa" is a prefix of "aab").
  StopMatcher m({"aab"});
  bool stopped = false;
  EXPECT_EQ(FeedAll(m, {"xa", "a", "a", "b", "c"}, &stopped), "xa");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcherTest, CharacterByCharacterEqualsWhole) {
  const std::string text = "The quick brown fox jumps over the lazy dog";
  for (const std::string stop : {"fox", "dog", "cat", "e q", "g"}) {
    StopMatcher whole({stop});
    std::string expect = FeedAll(whole, {text});
    StopMatcher pieces({stop});
    std::vector<std::string> chars;
    for (char c : text) chars.push_back(std::string(1, c));
    EXPECT_EQ(FeedAll(pieces, chars), expect) << stop;
  }
}

TEST(StopMatcherTest, MultiByteUtf8NotSplit) {
  // "é" is two bytes; a stop string starting with it holds back whole characters only.
  StopMatcher m({"\xC3\xA9t\xC3\xA9"});
  auto o = m.Feed("caf\xC3\xA9");
  EXPECT_EQ(o.text, "caf");
  EXPECT_EQ(m.Flush(), "\xC3\xA9");
}

TEST(StopMatcherTest, EmptyStopStringsIgnored) {
  StopMatcher m({"", ""});
  EXPECT_EQ(m.Feed("abc").text, "abc");
}

}  // namespace
}  // namespace petrel::server
