// Golden tests: petrel's tokenizer against Hugging Face `tokenizers` on real tokenizer files.
//  - tests/fixtures/refs.json "tokenizer_cases": the Qwen3 tokenizer (ids, ids with special
//    tokens, tokens, decode, decode skipping special tokens);
//  - tests/fixtures/tokenizers/<family>_refs.json (tools/gen_tokenizer_refs.py): the same fields
//    for Qwen3, Llama-2 (SentencePiece-style BPE with byte fallback) and Llama-3 (byte-level
//    BPE) on tricky strings, plus every document of the differential corpus, id for id.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/json_util.h"
#include "tokenizer/tokenizer.h"

namespace petrel::tokenizer {
namespace {

std::string Fixture(const std::string& rel) { return std::string(PETREL_FIXTURES) + "/" + rel; }

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::unique_ptr<Tokenizer> Load(const std::string& dir) {
  auto tok = Tokenizer::FromDirectory(dir);
  EXPECT_TRUE(tok.ok()) << tok.error().ToString();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

// Checks one {text, ids, ids_with_special, tokens, decoded, decoded_skip_special} case.
void CheckCase(const Tokenizer& tok, const Json& c, const std::string& label) {
  const std::string text = c["text"].get<std::string>();
  SCOPED_TRACE(label + ": " + text.substr(0, 80));
  auto ids = tok.Encode(text, {.add_special_tokens = false});
  ASSERT_TRUE(ids.ok()) << ids.error().ToString();
  EXPECT_EQ(*ids, c["ids"].get<std::vector<int32_t>>());
  if (c.contains("ids_with_special")) {
    auto ws = tok.Encode(text);
    ASSERT_TRUE(ws.ok());
    EXPECT_EQ(*ws, c["ids_with_special"].get<std::vector<int32_t>>());
  }
  if (c.contains("tokens")) {
    EXPECT_EQ(tok.IdsToTokens(*ids), c["tokens"].get<std::vector<std::string>>());
  }
  const std::vector<int32_t> dec_ids =
      c.contains("ids_with_special") ? c["ids_with_special"].get<std::vector<int32_t>>() : *ids;
  if (c.contains("decoded")) {
    auto d = tok.Decode(dec_ids);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, c["decoded"].get<std::string>());
  }
  if (c.contains("decoded_skip_special")) {
    auto d = tok.Decode(dec_ids, true);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, c["decoded_skip_special"].get<std::string>());
  }
  if (c.contains("ids_no_parse_special")) {
    auto np = tok.Encode(text, {.add_special_tokens = false, .parse_special = false});
    ASSERT_TRUE(np.ok());
    EXPECT_EQ(*np, c["ids_no_parse_special"].get<std::vector<int32_t>>());
  }
}

TEST(TokenizerGolden, Qwen3RefsJson) {
  auto refs = ParseJson(ReadFileOrEmpty(Fixture("refs.json")), "refs.json");
  ASSERT_TRUE(refs.ok()) << refs.error().ToString();
  auto tok = Load(Fixture("qwen3-tiny"));
  ASSERT_TRUE(tok);
  const Json& cases = (*refs)["tokenizer_cases"];
  ASSERT_GT(cases.size(), 20u);
  for (size_t i = 0; i < cases.size(); ++i) {
    CheckCase(*tok, cases[i], "case " + std::to_string(i));
  }
}

// One family's refs file: strings + corpus documents.
void CheckFamily(const std::string& family, const std::string& model_dir) {
  const std::string path = Fixture("tokenizers/" + family + "_refs.json");
  const std::string text = ReadFileOrEmpty(path);
  if (text.empty()) GTEST_SKIP() << "no " << path << " (run tools/gen_tokenizer_refs.py)";
  auto refs = ParseJson(text, path);
  ASSERT_TRUE(refs.ok()) << refs.error().ToString();
  auto tok = Load(model_dir);
  ASSERT_TRUE(tok);
  const Json& cases = (*refs)["cases"];
  for (size_t i = 0; i < cases.size(); ++i)
    CheckCase(*tok, cases[i], family + " case " + std::to_string(i));
  // Corpus: ids must match for every document; decode must round-trip to HF's decode.
  const Json& corpus = (*refs)["corpus"];
  size_t n_ids = 0, n_bad = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const Json& doc = corpus[i];
    const std::string body = doc["text"].get<std::string>();
    auto ids = tok->Encode(body, {.add_special_tokens = false});
    ASSERT_TRUE(ids.ok()) << ids.error().ToString();
    const auto want = doc["ids"].get<std::vector<int32_t>>();
    n_ids += want.size();
    if (*ids != want) {
      ++n_bad;
      size_t k = 0;
      while (k < want.size() && k < ids->size() && want[k] == (*ids)[k]) ++k;
      ADD_FAILURE() << family << " corpus doc " << i << " (" << doc.value("name", "") << ")"
                    << " first mismatch at id " << k << " near text: "
                    << *tok->Decode(std::span<const int32_t>(want).subspan(
                           k > 3 ? k - 3 : 0,
                           std::min<size_t>(want.size() - (k > 3 ? k - 3 : 0), 8)));
      continue;
    }
    if (doc.contains("decoded")) {
      auto d = tok->Decode(want);
      ASSERT_TRUE(d.ok());
      EXPECT_EQ(*d, doc["decoded"].get<std::string>()) << family << " corpus doc " << i;
    }
  }
  std::printf("%s: %zu cases, %zu corpus documents, %zu ids compared, %zu mismatching docs\n",
              family.c_str(), cases.size(), corpus.size(), n_ids, n_bad);
}

TEST(TokenizerGolden, Qwen3Family) { CheckFamily("qwen3", Fixture("qwen3-tiny")); }
TEST(TokenizerGolden, Llama2Family) { CheckFamily("llama2", Fixture("tokenizers/llama2")); }
TEST(TokenizerGolden, Llama3Family) { CheckFamily("llama3", Fixture("tokenizers/llama3")); }

}  // namespace
}  // namespace petrel::tokenizer
