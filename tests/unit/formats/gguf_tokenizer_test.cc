// The tokenizer built from GGUF metadata (tokenizer/gguf_vocab.h) on small hand-made vocabularies:
// SentencePiece merges from scores, byte fallback, BOS, the byte-level BPE path; every kind of
// malformed metadata gives an error naming the key; and a fuzz-style pass over a GGUF file with
// tokenizer keys (truncations and bit flips: errors, never a crash).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "formats/gguf.h"
#include "temp_dir.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace petrel::formats {
namespace {

using petrel::testing::FailsWith;
using tokenizer::Tokenizer;

// A SentencePiece vocabulary: ▁hi is reached through ▁h (score -1) then ▁hi (score -3).
Json SpmKv() {
  Json kv;
  kv["tokenizer.ggml.model"] = "llama";
  kv["tokenizer.ggml.tokens"] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "h", "i", "\xE2\x96\x81h", "hi",
                                 "\xE2\x96\x81hi", "<0xC3>", "<0xA9>"};
  kv["tokenizer.ggml.scores"] = {0.0, 0.0, 0.0, -10.0, -11.0, -12.0, -1.0, -2.0, -3.0, 0.0, 0.0};
  kv["tokenizer.ggml.token_type"] = {2, 3, 3, 1, 1, 1, 1, 1, 1, 6, 6};
  kv["tokenizer.ggml.bos_token_id"] = 1u;
  kv["tokenizer.ggml.eos_token_id"] = 2u;
  kv["tokenizer.ggml.unknown_token_id"] = 0u;
  return kv;
}

// A byte-level vocabulary ("Ġ" is the space) with GPT-2's pre-tokenizer.
Json Gpt2Kv() {
  Json kv;
  kv["tokenizer.ggml.model"] = "gpt2";
  kv["tokenizer.ggml.pre"] = "gpt-2";
  kv["tokenizer.ggml.tokens"] = {"h", "i", "hi", "\xC4\xA0", "\xC4\xA0hi", "<|end|>"};
  kv["tokenizer.ggml.token_type"] = {1, 1, 1, 1, 1, 3};
  kv["tokenizer.ggml.merges"] = {"h i", "\xC4\xA0 hi"};
  kv["tokenizer.ggml.eos_token_id"] = 5u;
  kv["tokenizer.chat_template"] = "{{ bos_token }}";
  return kv;
}

std::vector<int32_t> Enc(const Tokenizer& t, const std::string& s, bool special = true) {
  auto r = t.Encode(s, {.add_special_tokens = special});
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  return r.ok() ? *r : std::vector<int32_t>{};
}

TEST(GgufTokenizer, SentencePieceMergesFromScoresAndByteFallback) {
  auto tok = Tokenizer::FromGgufMetadata(SpmKv());
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  const Tokenizer& t = **tok;
  EXPECT_EQ(Enc(t, "hi"), (std::vector<int32_t>{1, 8}));             // <s> ▁hi
  EXPECT_EQ(Enc(t, "ih", false), (std::vector<int32_t>{3, 5, 4}));   // ▁ i h: no merge applies
  EXPECT_EQ(Enc(t, "hi hi", false), (std::vector<int32_t>{8, 8}));
  EXPECT_EQ(Enc(t, "\xC3\xA9", false), (std::vector<int32_t>{3, 9, 10}));  // é -> bytes
  EXPECT_EQ(Enc(t, "x", false), (std::vector<int32_t>{3, 0}));       // unknown -> <unk>
  EXPECT_EQ(Enc(t, "<s>hi", false), (std::vector<int32_t>{1, 8}));   // control token text
  auto d = t.Decode(std::vector<int32_t>{1, 8, 8, 3, 9, 10});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "<s> hi hi \xC3\xA9");
  auto ds = t.Decode(std::vector<int32_t>{1, 8, 8}, true);
  EXPECT_EQ(*ds, "hi hi");
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_TRUE(t.IsSpecial(1));

  Json no_prefix = SpmKv();
  no_prefix["tokenizer.ggml.add_space_prefix"] = false;
  no_prefix["tokenizer.ggml.add_bos_token"] = false;
  auto t2 = Tokenizer::FromGgufMetadata(no_prefix);
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(Enc(**t2, "hi"), (std::vector<int32_t>{7}));
}

TEST(GgufTokenizer, ByteLevelBpe) {
  auto tok = Tokenizer::FromGgufMetadata(Gpt2Kv());
  ASSERT_TRUE(tok.ok()) << tok.error().ToString();
  EXPECT_EQ(Enc(**tok, "hi hi<|end|>"), (std::vector<int32_t>{2, 4, 5}));  // no BOS for gpt2
  auto d = (*tok)->Decode(std::vector<int32_t>{2, 4, 5}, true);
  EXPECT_EQ(*d, "hi hi");
  EXPECT_TRUE((*tok)->IsSpecial(5));
  EXPECT_EQ((*tok)->eos_id(), 5);
}

TEST(GgufTokenizer, MalformedMetadataIsAPreciseError) {
  auto with = [](Json kv, const char* key, Json v) {
    if (v.is_null()) {
      kv.erase(key);
    } else {
      kv[key] = std::move(v);
    }
    return Tokenizer::FromGgufMetadata(kv);
  };
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.model", nullptr), ErrorCode::kNotFound,
                        {"tokenizer.ggml.model"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.model", "bert"), ErrorCode::kUnsupported, {"\"bert\""}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.merges", nullptr), ErrorCode::kInvalidFormat,
                        {"tokenizer.ggml.merges", "missing"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.tokens", "h"), ErrorCode::kInvalidFormat,
                        {"tokenizer.ggml.tokens", "must be an array"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.tokens", Json::array({"h", 7, "hi"})),
                        ErrorCode::kInvalidFormat, {"tokenizer.ggml.tokens", "array of strings", "element 1"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.token_type", Json::array({1, 1, 1, 1, 1, 3.5})),
                        ErrorCode::kInvalidFormat, {"tokenizer.ggml.token_type", "integers", "element 5"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.token_type", Json::array({1, 1})),
                        ErrorCode::kInvalidFormat, {"tokenizer.ggml.token_type", "2 entries for 6 tokens"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.token_type", Json::array({1, 1, 1, 1, 1, 9})),
                        ErrorCode::kInvalidFormat, {"tokenizer.ggml.token_type[5]\" = 9"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.eos_token_id", 6u), ErrorCode::kOutOfRange,
                        {"tokenizer.ggml.eos_token_id", "= 6", "6 tokens"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.bos_token_id", -7), ErrorCode::kOutOfRange,
                        {"tokenizer.ggml.bos_token_id", "-7"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.bos_token_id", "1"), ErrorCode::kInvalidFormat,
                        {"tokenizer.ggml.bos_token_id", "integer"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.pre", "deepseek-coder"), ErrorCode::kUnsupported,
                        {"tokenizer.ggml.pre", "\"deepseek-coder\""}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.merges", Json::array({"h x"})), ErrorCode::kInvalidFormat,
                        {"tokenizer.ggml.merges[0]", "\"x\" is not a token"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.merges", Json::array({"hi"})), ErrorCode::kInvalidFormat,
                        {"tokenizer.ggml.merges[0]", "left right"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.merges", Json::array({"i h"})), ErrorCode::kInvalidFormat,
                        {"tokenizer.ggml.merges[0]", "merged token \"ih\""}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.tokens", Json::array({"h", "i", "hi", "\xC4", "x", "y"})),
                        ErrorCode::kInvalidFormat, {"tokenizer.ggml.tokens[3]", "UTF-8"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.add_bos_token", true), ErrorCode::kInvalidFormat,
                        {"add_bos_token", "bos_token_id"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.ggml.add_bos_token", 1), ErrorCode::kInvalidFormat,
                        {"add_bos_token", "bool"}));
  EXPECT_TRUE(FailsWith(with(Gpt2Kv(), "tokenizer.chat_template", 3), ErrorCode::kInvalidFormat,
                        {"tokenizer.chat_template"}));
  EXPECT_TRUE(FailsWith(with(SpmKv(), "tokenizer.ggml.scores", nullptr), ErrorCode::kInvalidFormat,
                        {"tokenizer.ggml.scores", "missing"}));
  EXPECT_TRUE(FailsWith(with(SpmKv(), "tokenizer.ggml.scores", Json::array({"a"})), ErrorCode::kInvalidFormat,
                        {"tokenizer.ggml.scores", "1 entries for 11 tokens"}));
  EXPECT_TRUE(FailsWith(with(SpmKv(), "tokenizer.ggml.tokens", Json::array()), ErrorCode::kInvalidFormat,
                        {"tokenizer.ggml.tokens", "empty"}));
}

TEST(GgufTokenizer, GgufFileWithTokenizerKeysSurvivesTruncationAndBitFlips) {
  petrel::testing::TempDir tmp;
  OrderedJson kv;
  kv["general.architecture"] = "qwen3";
  const Json gpt2 = Gpt2Kv();
  for (const auto& [k, v] : gpt2.items()) kv[k] = v;
  kv["tokenizer.ggml.scores"] = {0.5f, 0.25f, 0.0f, 0.0f, 0.0f, 0.0f};
  const std::string path = tmp.File("t.gguf");
  auto written = WriteGguf(path, kv, {});
  ASSERT_TRUE(written.ok()) << written.error().ToString();
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> good((std::istreambuf_iterator<char>(in)), {});
  {
    auto f = GgufFile::Parse(good.data(), good.size(), "good");
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(Tokenizer::FromGgufMetadata(f->metadata()).ok());
  }
  int parsed = 0, built = 0;
  auto exercise = [&](const std::vector<char>& b) {
    auto f = GgufFile::Parse(b.data(), b.size(), "fuzz");
    if (!f.ok()) return;
    ++parsed;
    auto t = Tokenizer::FromGgufMetadata(f->metadata());
    if (!t.ok()) return;
    ++built;
    auto ids = (*t)->Encode("hi hi<|end|> x");
    if (ids.ok()) (void)(*t)->Decode(*ids);
  };
  for (size_t n = 0; n < good.size(); ++n) exercise(std::vector<char>(good.begin(), good.begin() + n));
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit : {0, 2, 5, 7}) {
      std::vector<char> b = good;
      b[i] ^= (char)(1 << bit);
      exercise(b);
    }
  }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(built, 0);  // flips inside token text still give a (different) working tokenizer
}

}  // namespace
}  // namespace petrel::formats
