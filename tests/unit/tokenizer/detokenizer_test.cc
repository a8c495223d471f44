// IncrementalDetokenizer: streaming output must (1) concatenate to exactly Decode(all ids),
// with and without skip_special_tokens, and (2) never contain a partial UTF-8 character.
// Checked on the three real tokenizers over the differential corpus (ids from the refs files).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/json_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace petrel::tokenizer {
namespace {

std::string Fixture(const std::string& rel) { return std::string(PETREL_FIXTURES) + "/" + rel; }

// Streams `ids` and checks both properties; returns the number of chunks.
size_t CheckStream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDetokenizer detok(tok, skip);
  std::string streamed;
  size_t chunks = 0;
  for (int32_t id : ids) {
    std::string piece = detok.Push(id);
    EXPECT_TRUE(utf8::IsValid(piece));
    EXPECT_FALSE(utf8::EndsWithIncompleteSequence(piece));
    chunks += !piece.empty();
    streamed += piece;
  }
  streamed += detok.Flush();
  auto full = tok.Decode(ids, skip);
  EXPECT_TRUE(full.ok());
  EXPECT_EQ(streamed, *full);
  return chunks;
}

TEST(IncrementalDetokenizer, MultiByteCharacterArrivesWhole) {
  auto tok = Tokenizer::FromDirectory(Fixture("qwen3-tiny"));
  ASSERT_TRUE(tok.ok());
  // U+20000 is split over three byte-level tokens in Qwen3 ("ð", "łĢ", "Ģ").
  auto ids = (*tok)->Encode("a\U00020000b", {.add_special_tokens = false});
  ASSERT_TRUE(ids.ok());
  ASSERT_GT(ids->size(), 3u);
  IncrementalDetokenizer detok(**tok, false);
  std::vector<std::string> pieces;
  for (int32_t id : *ids) pieces.push_back(detok.Push(id));
  pieces.push_back(detok.Flush());
  std::string all;
  for (const auto& p : pieces) {
    EXPECT_TRUE(p.empty() || utf8::IsValid(p)) << p;
    all += p;
  }
  EXPECT_EQ(all, "a\U00020000b");
  // The emoji's bytes come in one piece, never as U+FFFD or a fragment.
  EXPECT_NE(
      std::find_if(pieces.begin(), pieces.end(),
                   [](const std::string& p) { return p.find("\U00020000") != std::string::npos; }),
      pieces.end());
}

TEST(IncrementalDetokenizer, OutOfRangeIdIsIgnoredInStream) {
  auto tok = Tokenizer::FromDirectory(Fixture("qwen3-tiny"));
  ASSERT_TRUE(tok.ok());
  IncrementalDetokenizer detok(**tok, false);
  EXPECT_EQ(detok.Push(9707), "Hello");
  EXPECT_EQ(detok.Push(-1), "");
  EXPECT_EQ(detok.Push(1 << 30), "");
  EXPECT_EQ(detok.Push(1879), " world");
  EXPECT_EQ(detok.Flush(), "");
}

class StreamCorpus : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(StreamCorpus, ConcatenationEqualsDecode) {
  const auto [family, dir] = GetParam();
  std::ifstream f(Fixture(std::string("tokenizers/") + family + "_refs.json"), std::ios::binary);
  if (!f) GTEST_SKIP() << "no refs for " << family;
  std::ostringstream ss;
  ss << f.rdbuf();
  auto refs = ParseJson(ss.str(), family);
  ASSERT_TRUE(refs.ok());
  auto tok = Tokenizer::FromDirectory(Fixture(dir));
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  for (const Json& c : (*refs)["cases"]) {
    SCOPED_TRACE(c["text"].get<std::string>());
    CheckStream(**tok, c["ids_with_special"].get<std::vector<int32_t>>(), false);
    CheckStream(**tok, c["ids_with_special"].get<std::vector<int32_t>>(), true);
  }
  size_t docs = 0;
  for (const Json& d : (*refs)["corpus"]) {
    SCOPED_TRACE(d["name"].get<std::string>());
    const auto ids = d["ids"].get<std::vector<int32_t>>();
    const size_t chunks = CheckStream(**tok, ids, false);
    EXPECT_GT(chunks, ids.size() / 4);  // it really streams
    CheckStream(**tok, ids, true);
    if (++docs == 40) break;  // enough for a unit test; the golden test covers the rest
  }
}

INSTANTIATE_TEST_SUITE_P(Families, StreamCorpus,
                         ::testing::Values(std::make_pair("qwen3", "qwen3-tiny"),
                                           std::make_pair("llama2", "tokenizers/llama2"),
                                           std::make_pair("llama3", "tokenizers/llama3")),
                         [](const auto& info) { return std::string(info.param.first); });

}  // namespace
}  // namespace petrel::tokenizer
