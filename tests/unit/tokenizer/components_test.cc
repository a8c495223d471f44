// Unit tests of the tokenizer stages in isolation: UTF-8 helpers, normalizers, pre-tokenizers
// (every split behavior, ByteLevel, Metaspace schemes, Digits, Punctuation, Whitespace) and
// decoders. Expected values follow the documented behavior of Hugging Face `tokenizers`.
#include <gtest/gtest.h>

#include "core/json_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"

namespace petrel::tokenizer {
namespace {

Json J(const char* text) { return ParseJson(text, "test").value(); }

std::string Normalize(const char* spec, std::string_view in) {
  auto n = Normalizer::FromJson(J(spec), "normalizer");
  EXPECT_TRUE(n.ok()) << n.error().ToString();
  std::string out, tmp;
  RegexScratch rs;
  EXPECT_TRUE((*n)->Normalize(in, &out, &tmp, rs).ok());
  return out;
}

std::vector<std::string> PreTokenize(const char* spec, std::string_view in, bool origin = true) {
  auto p = PreTokenizer::FromJson(J(spec), "pre_tokenizer");
  EXPECT_TRUE(p.ok()) << p.error().ToString();
  PreTokScratch s;
  RegexScratch rs;
  EXPECT_TRUE((*p)->Run(in, origin, s, rs).ok());
  std::vector<std::string> out;
  for (const Piece& piece : s.a.list)
    out.push_back(s.a.text.substr(piece.begin, piece.end - piece.begin));
  return out;
}

std::string DecodeTokens(const char* spec, std::vector<std::string> tokens) {
  auto d = Decoder::FromJson(J(spec), "decoder");
  EXPECT_TRUE(d.ok()) << d.error().ToString();
  auto r = (*d)->Decode(std::move(tokens));
  EXPECT_TRUE(r.ok());
  return *r;
}

using V = std::vector<std::string>;

TEST(Utf8, ValidityAndLossyDecoding) {
  EXPECT_TRUE(utf8::IsValid("héllo 你好 🙂"));
  size_t off = 0;
  EXPECT_FALSE(utf8::IsValid("ab\xC0\xAF", &off));  // overlong
  EXPECT_EQ(off, 2u);
  EXPECT_FALSE(utf8::IsValid("\xED\xA0\x80"));  // surrogate
  std::string out;
  // A truncated 3-byte sequence is one U+FFFD (maximal subpart), a stray continuation another.
  utf8::AppendLossy(out,
                    "a\xE4\xBD"
                    "b\x80");
  EXPECT_EQ(out,
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  EXPECT_TRUE(utf8::EndsWithIncompleteSequence("x\xE4\xBD"));
  EXPECT_FALSE(utf8::EndsWithIncompleteSequence("x\xE4\xBD\xA0"));
  EXPECT_FALSE(utf8::EndsWithIncompleteSequence("x\x80"));
}

TEST(ByteLevel, MapsBytesToPrintableChars) {
  std::string s;
  AppendByteLevel(" \n", &s);
  EXPECT_EQ(s, "ĠĊ");
  EXPECT_EQ(CharToByte(U'Ġ'), ' ');
  EXPECT_EQ(CharToByte(U'a'), 'a');
  EXPECT_EQ(CharToByte(U'你'), -1);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(CharToByte(ByteToChar(static_cast<uint8_t>(b))), b);
}

TEST(Normalizer, UnicodeForms) {
  EXPECT_EQ(Normalize(R"({"type":"NFC"})", "e\u0301"), "\u00e9");
  EXPECT_EQ(Normalize(R"({"type":"NFD"})", "\u00e9"), "e\u0301");
  EXPECT_EQ(Normalize(R"({"type":"NFKC"})", "\ufb01 \u2460"), "fi 1");
  EXPECT_EQ(Normalize(R"({"type":"NFKD"})", "\u00c5"), "A\u030a");
  EXPECT_EQ(Normalize(R"({"type":"NFC"})", "plain ascii"), "plain ascii");
}

TEST(Normalizer, LowercaseStripPrependReplaceSequence) {
  EXPECT_EQ(Normalize(R"({"type":"Lowercase"})", "HeLLo ÀÉ İ ΟΔΟΣ"), "hello àé i\u0307 οδος");
  EXPECT_EQ(Normalize(R"({"type":"Strip","left":true,"right":false})", " \t x \u3000"), "x \u3000");
  EXPECT_EQ(Normalize(R"({"type":"Strip","left":true,"right":true})", " \t x \u3000"), "x");
  EXPECT_EQ(Normalize(R"({"type":"Prepend","prepend":"▁"})", "hi"), "▁hi");
  EXPECT_EQ(Normalize(R"({"type":"Prepend","prepend":"▁"})", ""), "");
  EXPECT_EQ(Normalize(R"({"type":"Replace","pattern":{"String":" "},"content":"▁"})", "a b  c"),
            "a▁b▁▁c");
  EXPECT_EQ(Normalize(R"({"type":"Replace","pattern":{"Regex":"\\s+"},"content":"_"})", "a \t b"),
            "a_b");
  EXPECT_EQ(Normalize(R"({"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},
                        {"type":"Replace","pattern":{"String":" "},"content":"▁"}]})",
                      "Hello world"),
            "▁Hello▁world");
  EXPECT_EQ(
      Normalize(R"({"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"}]})",
                "café"),
      "cafe");
}

// The example of SplitDelimiterBehavior in the `tokenizers` docs.
TEST(PreTokenizer, SplitBehaviors) {
  auto split = [](const char* behavior) {
    std::string spec = std::string(R"({"type":"Split","pattern":{"String":"-"},"behavior":")") +
                       behavior + R"(","invert":false})";
    return PreTokenize(spec.c_str(), "the-final--countdown");
  };
  EXPECT_EQ(split("Removed"), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split("Isolated"), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithPrevious"), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithNext"), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split("Contiguous"), (V{"the", "-", "final", "--", "countdown"}));
}

TEST(PreTokenizer, SplitInvertKeepsMatches) {
  EXPECT_EQ(PreTokenize(
                R"({"type":"Split","pattern":{"Regex":"\\d+"},"behavior":"Removed","invert":true})",
                "ab12cd345"),
            (V{"12", "345"}));
}

TEST(PreTokenizer, ByteLevel) {
  EXPECT_EQ(PreTokenize(R"({"type":"ByteLevel","add_prefix_space":true,"use_regex":true})",
                        "Hello  world's"),
            (V{"ĠHello", "Ġ", "Ġworld", "'s"}));
  EXPECT_EQ(
      PreTokenize(R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false})", "a b\n"),
      (V{"aĠbĊ"}));
}

TEST(PreTokenizer, MetaspaceSchemes) {
  const char* always =
      R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})";
  const char* first =
      R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true})";
  const char* never =
      R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"never","split":false})";
  EXPECT_EQ(PreTokenize(always, "Hey  you"), (V{"▁Hey", "▁", "▁you"}));
  EXPECT_EQ(PreTokenize(first, "Hey you", /*origin=*/true), (V{"▁Hey", "▁you"}));
  EXPECT_EQ(PreTokenize(first, "Hey you", /*origin=*/false), (V{"Hey", "▁you"}));
  EXPECT_EQ(PreTokenize(never, "Hey you"), (V{"Hey▁you"}));
}

TEST(PreTokenizer, DigitsPunctuationWhitespace) {
  EXPECT_EQ(PreTokenize(R"({"type":"Digits","individual_digits":true})", "a123"),
            (V{"a", "1", "2", "3"}));
  EXPECT_EQ(PreTokenize(R"({"type":"Digits","individual_digits":false})", "a123b"),
            (V{"a", "123", "b"}));
  EXPECT_EQ(PreTokenize(R"({"type":"Punctuation","behavior":"Isolated"})", "Hey, you!?"),
            (V{"Hey", ",", " you", "!", "?"}));
  EXPECT_EQ(PreTokenize(R"({"type":"Whitespace"})", "Hey man!! How's it"),
            (V{"Hey", "man", "!!", "How", "'", "s", "it"}));
  EXPECT_EQ(PreTokenize(R"({"type":"WhitespaceSplit"})", "Hey man!!\t How's"),
            (V{"Hey", "man!!", "How's"}));
  EXPECT_EQ(PreTokenize(R"({"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},
                          {"type":"Digits","individual_digits":true}]})",
                        "ab 12"),
            (V{"ab", "1", "2"}));
}

TEST(Decoder, ByteLevelAndLossyBytes) {
  EXPECT_EQ(DecodeTokens(R"({"type":"ByteLevel"})", {"Hello", "Ġworld", "<|im_end|>"}),
            "Hello world<|im_end|>");
  // "ä½" are the byte-level chars of E4 BD: an incomplete character -> one U+FFFD.
  EXPECT_EQ(DecodeTokens(R"({"type":"ByteLevel"})", {"a", "ä½"}), "a\xEF\xBF\xBD");
}

TEST(Decoder, SentencePieceChain) {
  const char* llama = R"({"type":"Sequence","decoders":[
      {"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},
      {"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]})";
  EXPECT_EQ(DecodeTokens(llama, {"▁Hello", "▁world"}), "Hello world");
  EXPECT_EQ(DecodeTokens(llama, {"▁", "<0xE4>", "<0xBD>", "<0xA0>"}), "你");
  // Invalid byte runs give one U+FFFD per byte token.
  EXPECT_EQ(DecodeTokens(llama, {"a", "<0xE4>", "<0xBD>", "b"}),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");
}

TEST(Decoder, MetaspaceDropsReplacementInFirstToken) {
  EXPECT_EQ(DecodeTokens(R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always"})",
                         {"▁Hey", "▁friend"}),
            "Hey friend");
  EXPECT_EQ(DecodeTokens(R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"never"})",
                         {"▁Hey", "▁friend"}),
            " Hey friend");
}

TEST(Decoder, CleanUpTokenizationSpaces) {
  EXPECT_EQ(CleanUpTokenization("Hello , world ! I 'm sure it 's fine . It is n't , is it ?"),
            "Hello, world! I'm sure it's fine. It isn't, is it?");
}

}  // namespace
}  // namespace petrel::tokenizer
