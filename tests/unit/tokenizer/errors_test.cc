// Malformed tokenizer.json / tokenizer_config.json: each must fail at load with a precise
// error (code + a message naming the field), never crash or load something half-built.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"

namespace petrel::tokenizer {
namespace {

const char* kVocab = R"("vocab":{"a":0,"b":1,"ab":2},"merges":["a b"])";

std::string Model(const std::string& fields) {
  return R"({"model":{"type":"BPE",)" + fields + "}}";
}
// Same model with extra top-level members.
std::string With(const std::string& extra) {
  return "{" + extra + R"(,"model":{"type":"BPE",)" + kVocab + "}}";
}

struct Case {
  const char* name;
  std::string json;
  ErrorCode code;
  const char* message_part;  // must appear in the error message
};

class MalformedTokenizer : public ::testing::TestWithParam<Case> {};

TEST_P(MalformedTokenizer, FailsWithPreciseError) {
  const Case& c = GetParam();
  auto t = Tokenizer::FromJson(c.json, "");
  ASSERT_FALSE(t.ok()) << c.name << " loaded";
  EXPECT_EQ(t.error().code, c.code) << t.error().ToString();
  EXPECT_NE(t.error().message.find(c.message_part), std::string::npos)
      << "message: " << t.error().message << "\nexpected to contain: " << c.message_part;
}

INSTANTIATE_TEST_SUITE_P(
    Errors, MalformedTokenizer,
    ::testing::Values(
        Case{"not_json", "{\"model\": {", ErrorCode::kInvalidFormat, "invalid JSON"},
        Case{"truncated_vocab", R"({"model":{"type":"BPE","vocab":{"a":0,)",
             ErrorCode::kInvalidFormat, "invalid JSON at byte"},
        Case{"no_model", R"({"version":"1.0"})", ErrorCode::kInvalidFormat,
             "missing object field \"model\""},
        Case{"no_vocab", Model(R"("merges":[])"), ErrorCode::kInvalidFormat,
             "missing field \"vocab\""},
        Case{"no_merges", Model(R"("vocab":{"a":0})"), ErrorCode::kInvalidFormat,
             "missing field \"merges\""},
        Case{"wordpiece", R"({"model":{"type":"WordPiece","vocab":{"a":0}}})",
             ErrorCode::kUnsupported, "\"WordPiece\" is not supported yet"},
        Case{"unigram", R"({"model":{"type":"Unigram","vocab":[["a",0.0]]}})",
             ErrorCode::kUnsupported, "\"Unigram\" is not supported yet"},
        Case{"vocab_id_negative", Model(R"("vocab":{"a":-1},"merges":[])"), ErrorCode::kOutOfRange,
             "model.vocab[\"a\"] = -1 is out of range"},
        Case{"vocab_id_huge", Model(R"("vocab":{"a":99999999999},"merges":[])"),
             ErrorCode::kOutOfRange, "out of range"},
        Case{"vocab_id_not_int", Model(R"("vocab":{"a":"0"},"merges":[])"),
             ErrorCode::kInvalidFormat, "model.vocab[\"a\"] must be an integer id"},
        Case{"merge_unknown_token", Model(R"("vocab":{"a":0,"b":1},"merges":["a c"])"),
             ErrorCode::kInvalidFormat,
             "model.merges[0]: merge token \"c\" is not in the vocabulary"},
        Case{"merge_result_unknown", Model(R"("vocab":{"a":0,"b":1},"merges":["a b"])"),
             ErrorCode::kInvalidFormat, "merged token \"ab\" is not in the vocabulary"},
        Case{"merge_no_space", Model(R"("vocab":{"a":0},"merges":["ab"])"),
             ErrorCode::kInvalidFormat, "is not of the form \"left right\""},
        Case{"dropout", Model(std::string(kVocab) + R"(,"dropout":0.1)"), ErrorCode::kUnsupported,
             "dropout"},
        Case{"added_id_out_of_range", With(R"("added_tokens":[{"id":-5,"content":"<x>"}])"),
             ErrorCode::kOutOfRange, "added_tokens[0]: id -5 is out of range"},
        Case{"added_no_content", With(R"("added_tokens":[{"id":5}])"), ErrorCode::kInvalidFormat,
             "added_tokens[0]: missing field \"content\""},
        Case{"unknown_normalizer", With(R"("normalizer":{"type":"Precompiled"})"),
             ErrorCode::kUnsupported, "normalizer type \"Precompiled\" is not supported"},
        Case{"normalizer_no_type", With(R"("normalizer":{"prepend":"x"})"),
             ErrorCode::kInvalidFormat, "normalizer: missing field \"type\""},
        Case{"bad_regex", With(R"("pre_tokenizer":{"type":"Sequence","pretokenizers":[
                {"type":"Split","pattern":{"Regex":"(\\p{L}+"},"behavior":"Isolated"}]})"),
             ErrorCode::kInvalidFormat, "pre_tokenizer.pretokenizers[0]: bad regex \"(\\p{L}+\""},
        Case{"bad_behavior", With(R"("pre_tokenizer":{"type":"Split","pattern":{"String":" "},
                "behavior":"Sideways"})"),
             ErrorCode::kInvalidFormat, "unknown split behavior \"Sideways\""},
        Case{"unknown_pretokenizer", With(R"("pre_tokenizer":{"type":"UnicodeScripts"})"),
             ErrorCode::kUnsupported, "pre-tokenizer type \"UnicodeScripts\" is not supported"},
        Case{"metaspace_bad_scheme",
             With(R"("pre_tokenizer":{"type":"Metaspace","prepend_scheme":"sometimes"})"),
             ErrorCode::kInvalidFormat, "unknown prepend_scheme \"sometimes\""},
        Case{"unknown_decoder", With(R"("decoder":{"type":"CTC"})"), ErrorCode::kUnsupported,
             "decoder type \"CTC\" is not supported"},
        Case{"strip_not_char",
             With(R"("decoder":{"type":"Strip","content":"ab","start":1,"stop":0})"),
             ErrorCode::kInvalidFormat, "must be exactly one character"},
        Case{"template_unknown_special", With(R"("post_processor":{"type":"TemplateProcessing",
                "single":[{"SpecialToken":{"id":"<s>","type_id":0}}],"special_tokens":{}})"),
             ErrorCode::kInvalidFormat, "special token \"<s>\" is not defined"},
        Case{"template_id_out_of_range", With(R"("post_processor":{"type":"TemplateProcessing",
                "single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
                "special_tokens":{"<s>":{"id":"<s>","ids":[7],"tokens":["<s>"]}}})"),
             ErrorCode::kOutOfRange, "special token id 7 is out of range [0, 3)"},
        Case{"unknown_post_processor", With(R"("post_processor":{"type":"Wrapper"})"),
             ErrorCode::kUnsupported, "post-processor type \"Wrapper\" is not supported"},
        Case{"bool_field_wrong_type",
             With(R"("pre_tokenizer":{"type":"ByteLevel","add_prefix_space":"yes"})"),
             ErrorCode::kInvalidFormat, "field \"add_prefix_space\" must be a boolean"}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(MalformedConfig, BadTokenizerConfig) {
  const std::string json = With(R"("added_tokens":[])");
  auto bad_json = Tokenizer::FromJson(json, "{not json");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_NE(bad_json.error().message.find("tokenizer_config.json"), std::string::npos);
  auto bad_bos = Tokenizer::FromJson(json, R"({"bos_token": 5})");
  ASSERT_FALSE(bad_bos.ok());
  EXPECT_NE(bad_bos.error().message.find("\"bos_token\""), std::string::npos);
  auto bad_clean = Tokenizer::FromJson(json, R"({"clean_up_tokenization_spaces": "yes"})");
  ASSERT_FALSE(bad_clean.ok());
  // Absent / null entries are fine.
  auto ok = Tokenizer::FromJson(json, R"({"bos_token": null, "eos_token": "ab"})");
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_FALSE((*ok)->bos_id().has_value());
  EXPECT_EQ((*ok)->eos_id(), 2);
}

TEST(MalformedDirectory, MissingTokenizerJson) {
  auto t = Tokenizer::FromDirectory("/nonexistent/model/dir");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kNotFound);
  EXPECT_NE(t.error().message.find("no tokenizer.json in /nonexistent/model/dir"),
            std::string::npos);
}

}  // namespace
}  // namespace petrel::tokenizer
