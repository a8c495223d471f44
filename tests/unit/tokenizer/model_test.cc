// Unit tests of whole (small, hand-written) tokenizer.json files: BPE merges and their ranks,
// byte_fallback, unk_token with fuse_unk, continuing_subword_prefix / end_of_word_suffix,
// ignore_merges, added tokens (lstrip, rstrip, single_word, normalized, parse_special) and
// post-processors. Expected ids follow `tokenizers` semantics (models/bpe/model.rs,
// tokenizer/added_vocabulary.rs).
#include <gtest/gtest.h>

#include <thread>

#include "tokenizer/tokenizer.h"

namespace petrel::tokenizer {
namespace {

using Ids = std::vector<int32_t>;

// A tokenizer.json with the given model fields, added tokens and extra top-level members.
std::string Json(const std::string& model, const std::string& added = "[]",
                 const std::string& extra = "") {
  return R"({"version":"1.0","added_tokens":)" + added + (extra.empty() ? "" : "," + extra) +
         R"(,"model":{"type":"BPE",)" + model + "}}";
}

std::unique_ptr<Tokenizer> Make(const std::string& json, const std::string& config = "") {
  auto t = Tokenizer::FromJson(json, config);
  EXPECT_TRUE(t.ok()) << t.error().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

Ids Enc(const Tokenizer& t, std::string_view text, EncodeOptions o = {}) {
  auto r = t.Encode(text, o);
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  return r.ok() ? *r : Ids{};
}

// vocab: a b c ab bc abc; merges "a b" (rank 0), "b c" (1), "ab c" (2).
const char* kAbc =
    R"("vocab":{"a":0,"b":1,"c":2,"ab":3,"bc":4,"abc":5},"merges":["a b","b c","ab c"])";

TEST(Bpe, MergesByRankLeftmostFirst) {
  auto t = Make(Json(kAbc));
  ASSERT_TRUE(t);
  EXPECT_EQ(Enc(*t, "abc"), (Ids{5}));  // a b -> ab, ab c -> abc
  EXPECT_EQ(Enc(*t, "bc"), (Ids{4}));
  EXPECT_EQ(Enc(*t, "abab"), (Ids{3, 3}));
  EXPECT_EQ(Enc(*t, "cba"), (Ids{2, 1, 0}));
  EXPECT_EQ(t->vocab_size(), 6);
  EXPECT_EQ(t->IdsToTokens(Ids{5, 0}), (std::vector<std::string>{"abc", "a"}));
  EXPECT_EQ(t->TokenToId("bc"), 4);
  EXPECT_FALSE(t->TokenToId("zz").has_value());
}

TEST(Bpe, MergesAsPairsAndIgnoreMerges) {
  // "abc" is in the vocabulary but no merge produces it from "a" "bc": with ignore_merges the
  // whole word is looked up first.
  const std::string vocab = R"("vocab":{"a":0,"b":1,"c":2,"bc":3,"abc":4},"merges":[["b","c"]])";
  auto plain = Make(Json(vocab));
  auto ignore = Make(Json(vocab + R"(,"ignore_merges":true)"));
  ASSERT_TRUE(plain && ignore);
  EXPECT_EQ(Enc(*plain, "abc"), (Ids{0, 3}));
  EXPECT_EQ(Enc(*ignore, "abc"), (Ids{4}));
}

TEST(Bpe, ByteFallbackAndUnk) {
  std::string vocab = R"("vocab":{"<unk>":0,"a":1,"<0xE4>":2,"<0xBD>":3,"<0xA0>":4},"merges":[])";
  auto fb = Make(Json(vocab + R"(,"unk_token":"<unk>","byte_fallback":true,"fuse_unk":true)"));
  auto fused = Make(Json(vocab + R"(,"unk_token":"<unk>","fuse_unk":true)"));
  auto unfused = Make(Json(vocab + R"(,"unk_token":"<unk>","fuse_unk":false)"));
  auto no_unk = Make(Json(vocab));
  ASSERT_TRUE(fb && fused && unfused && no_unk);
  EXPECT_EQ(Enc(*fb, "a你a"), (Ids{1, 2, 3, 4, 1}));
  EXPECT_EQ(Enc(*fb, "xy"), (Ids{0}));  // no byte tokens for x, y: unk, fused
  EXPECT_EQ(Enc(*fused, "axya"), (Ids{1, 0, 1}));
  EXPECT_EQ(Enc(*unfused, "axya"), (Ids{1, 0, 0, 1}));
  EXPECT_EQ(Enc(*no_unk, "axya"), (Ids{1, 1}));  // unknown characters are dropped
}

TEST(Bpe, ContinuingSubwordPrefixAndSuffix) {
  auto pre = Make(Json(R"("vocab":{"a":0,"##b":1,"##c":2,"a##b":9,"ab":3,"##bc":4},
      "merges":["a ##b","##b ##c"],"continuing_subword_prefix":"##")"));
  ASSERT_TRUE(pre);
  EXPECT_EQ(Enc(*pre, "ab"), (Ids{3}));  // "a" + "##b" -> "ab" (prefix of the right side dropped)
  EXPECT_EQ(Enc(*pre, "abc"), (Ids{3, 2}));
  auto suf = Make(Json(R"("vocab":{"a":0,"b</w>":1,"ab</w>":2,"b":3},"merges":["a b</w>"],
      "end_of_word_suffix":"</w>")"));
  ASSERT_TRUE(suf);
  EXPECT_EQ(Enc(*suf, "ab"), (Ids{2}));
  EXPECT_EQ(Enc(*suf, "ba"), (Ids{3}));  // "a</w>" is not in the vocab and there is no unk
}

const char* kAdded = R"([
  {"id":10,"content":"<s>","special":true,"normalized":false,"lstrip":false,"rstrip":false,"single_word":false},
  {"id":11,"content":"[L]","special":false,"normalized":false,"lstrip":true,"rstrip":false,"single_word":false},
  {"id":12,"content":"[R]","special":false,"normalized":false,"lstrip":false,"rstrip":true,"single_word":false},
  {"id":13,"content":"ab","special":false,"normalized":false,"lstrip":false,"rstrip":false,"single_word":true},
  {"id":14,"content":"<s>x","special":true,"normalized":false,"lstrip":false,"rstrip":false,"single_word":false},
  {"id":15,"content":"XY","special":false,"normalized":true,"lstrip":false,"rstrip":false,"single_word":false}])";

TEST(AddedTokens, StripSingleWordLongestAndNormalized) {
  auto t = Make(Json(R"("vocab":{"a":0,"b":1,"c":2," ":3},"merges":[])", kAdded,
                     R"("normalizer":{"type":"Lowercase"})"));
  ASSERT_TRUE(t);
  EXPECT_EQ(Enc(*t, "a<s>b"), (Ids{0, 10, 1}));
  EXPECT_EQ(Enc(*t, "a<s>xb"), (Ids{0, 14, 1}));   // longest match wins
  EXPECT_EQ(Enc(*t, "a  [L]b"), (Ids{0, 11, 1}));  // lstrip eats the spaces before
  EXPECT_EQ(Enc(*t, "a[R]  b"), (Ids{0, 12, 1}));  // rstrip eats the spaces after
  EXPECT_EQ(Enc(*t, "c ab c"), (Ids{2, 3, 13, 3, 2}));
  EXPECT_EQ(Enc(*t, "cab"), (Ids{2, 0, 1}));  // single_word: glued to "c", not matched
  // normalized=true: the token is normalized too ("xy") and matched in the normalized text.
  EXPECT_EQ(Enc(*t, "XY"), (Ids{15}));
  EXPECT_EQ(Enc(*t, "axy"), (Ids{0, 15}));
  // parse_special=false: special tokens are plain text, non-special ones still match.
  EXPECT_EQ(Enc(*t, "<s>[R]", {.parse_special = false}).back(), 12);
  EXPECT_NE(Enc(*t, "<s>", {.parse_special = false}), (Ids{10}));
  EXPECT_TRUE(t->IsSpecial(10));
  EXPECT_FALSE(t->IsSpecial(11));
  EXPECT_EQ(t->vocab_size(), 16);
}

TEST(PostProcessor, TemplateAddsBosEos) {
  const std::string pp = R"("post_processor":{"type":"TemplateProcessing",
      "single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},
                {"SpecialToken":{"id":"</s>","type_id":0}}],
      "special_tokens":{"<s>":{"id":"<s>","ids":[10],"tokens":["<s>"]},
                        "</s>":{"id":"</s>","ids":[11],"tokens":["</s>"]}}})";
  auto t = Make(
      Json(
          kAbc,
          R"([{"id":10,"content":"<s>","special":true},{"id":11,"content":"</s>","special":true}])",
          pp),
      R"({"bos_token":"<s>","eos_token":{"content":"</s>","lstrip":false}})");
  ASSERT_TRUE(t);
  EXPECT_EQ(Enc(*t, "ab"), (Ids{10, 3, 11}));
  EXPECT_EQ(Enc(*t, "ab", {.add_special_tokens = false}), (Ids{3}));
  EXPECT_EQ(Enc(*t, ""), (Ids{10, 11}));
  EXPECT_EQ(t->bos_id(), 10);
  EXPECT_EQ(t->eos_id(), 11);
  EXPECT_EQ(t->bos_token(), "<s>");
  EXPECT_EQ(t->eos_token(), "</s>");
  // No decoder: tokens joined with spaces; skip_special drops <s> and </s>.
  EXPECT_EQ(*t->Decode(Ids{10, 3, 11}), "<s> ab </s>");
  EXPECT_EQ(*t->Decode(Ids{10, 3, 11}, true), "ab");
}

TEST(Tokenizer, DecodeRejectsUnknownIdsAndEncodeRejectsBadUtf8) {
  auto t = Make(Json(kAbc));
  ASSERT_TRUE(t);
  auto d = t->Decode(Ids{0, 99});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, ErrorCode::kOutOfRange);
  EXPECT_NE(d.error().message.find("99"), std::string::npos);
  auto e = t->Encode("ab\xFF");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(e.error().message.find("byte offset 2"), std::string::npos);
}

TEST(Tokenizer, ConcurrentEncodeIsConsistent) {
  auto t = Tokenizer::FromDirectory(std::string(PETREL_FIXTURES) + "/qwen3-tiny");
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  const std::string text =
      "Concurrent encoding of the same text, 你好, 🙂 and <|im_start|> tokens. ";
  std::string big;
  for (int i = 0; i < 200; ++i) big += text + std::to_string(i);
  const Ids want = Enc(**t, big);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 5; ++rep) ok[k] += (*t)->Encode(big).value() == want;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok, (std::vector<int>{5, 5, 5, 5}));
}

}  // namespace
}  // namespace petrel::tokenizer
