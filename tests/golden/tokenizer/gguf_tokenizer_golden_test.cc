// Golden tests of the GGUF tokenizer: a real tokenizer.json (Qwen3: byte-level BPE `gpt2` with
// pre "qwen2"; Llama-2: SentencePiece `llama`, merges rebuilt from scores; Llama-3: `gpt2` with
// pre "llama-bpe") is written into a GGUF file as tokenizer.ggml.* keys (what `petrel convert
// --to gguf` embeds), read back with GgufFile, and the tokenizer built from that metadata must
// give Hugging Face's ids, tokens and decodes on every reference case, and the same ids and
// decodes as the tokenizer.json it came from on the whole differential corpus.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "core/json_util.h"
#include "formats/gguf.h"
#include "tokenizer/gguf_vocab.h"
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

struct Pair {
  std::unique_ptr<Tokenizer> json;  // from tokenizer.json
  std::unique_ptr<Tokenizer> gguf;  // from the GGUF metadata written from it
  Json metadata;
};

// tokenizer.json -> tokenizer.ggml.* keys -> a .gguf file on disk -> GgufFile -> Tokenizer.
Pair LoadBoth(const std::string& dir, const std::string& tag, int64_t min_tokens) {
  Pair p;
  auto json_tok = Tokenizer::FromDirectory(dir);
  EXPECT_TRUE(json_tok.ok()) << json_tok.error().ToString();
  if (!json_tok.ok()) return p;
  p.json = std::move(json_tok).value();
  OrderedJson kv;
  kv["general.architecture"] = "llama";
  GgufVocabOptions opts;
  opts.min_tokens = min_tokens;
  opts.chat_template = "{{ messages[0]['content'] }}";
  auto st = HfTokenizerToGguf(ReadFileOrEmpty(dir + "/tokenizer.json"),
                              ReadFileOrEmpty(dir + "/tokenizer_config.json"), opts, &kv);
  EXPECT_TRUE(st.ok()) << st.error().ToString();
  if (!st.ok()) return p;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("petrel_gguf_tok_" + tag + "_" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  EXPECT_TRUE(formats::WriteGguf(path, kv, {}).ok());
  auto f = formats::GgufFile::Open(path);
  std::filesystem::remove(path);  // the mapping stays valid
  EXPECT_TRUE(f.ok()) << f.error().ToString();
  if (!f.ok()) return p;
  p.metadata = f->metadata();
  auto gguf_tok = Tokenizer::FromGgufMetadata(p.metadata);
  EXPECT_TRUE(gguf_tok.ok()) << gguf_tok.error().ToString();
  if (gguf_tok.ok()) p.gguf = std::move(gguf_tok).value();
  return p;
}

// refs cases (HF ids, ids with special tokens, tokens, decodes) and the corpus, both tokenizers.
void CheckFamily(const std::string& family, const std::string& dir, int64_t min_tokens,
                 bool check_decode) {
  const std::string refs_text = ReadFileOrEmpty(Fixture("tokenizers/" + family + "_refs.json"));
  if (refs_text.empty()) GTEST_SKIP() << "no refs for " << family;
  auto refs = ParseJson(refs_text, family);
  ASSERT_TRUE(refs.ok());
  Pair p = LoadBoth(dir, family, min_tokens);
  ASSERT_TRUE(p.json && p.gguf);
  EXPECT_EQ(p.gguf->bos_id(), p.json->bos_id().has_value() ? p.json->bos_id() : p.gguf->bos_id());
  EXPECT_EQ(p.gguf->eos_id(), p.json->eos_id());
  const Json& cases = (*refs)["cases"];
  for (size_t i = 0; i < cases.size(); ++i) {
    const Json& c = cases[i];
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(family + " case " + std::to_string(i) + ": " + text.substr(0, 60));
    auto ids = p.gguf->Encode(text, {.add_special_tokens = false});
    ASSERT_TRUE(ids.ok()) << ids.error().ToString();
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int32_t>>());
    auto ws = p.gguf->Encode(text);
    ASSERT_TRUE(ws.ok());
    EXPECT_EQ(*ws, c["ids_with_special"].get<std::vector<int32_t>>());
    EXPECT_EQ(p.gguf->IdsToTokens(*ids), c["tokens"].get<std::vector<std::string>>());
    if (c.contains("ids_no_parse_special")) {
      auto np = p.gguf->Encode(text, {.add_special_tokens = false, .parse_special = false});
      ASSERT_TRUE(np.ok());
      EXPECT_EQ(*np, c["ids_no_parse_special"].get<std::vector<int32_t>>());
    }
    if (check_decode) {
      auto d = p.gguf->Decode(*ws);
      ASSERT_TRUE(d.ok());
      EXPECT_EQ(*d, c["decoded"].get<std::string>());
      auto ds = p.gguf->Decode(*ws, true);
      ASSERT_TRUE(ds.ok());
      EXPECT_EQ(*ds, c["decoded_skip_special"].get<std::string>());
    }
  }
  size_t n_ids = 0;
  for (const Json& doc : (*refs)["corpus"]) {
    const std::string body = doc["text"].get<std::string>();
    auto want = p.json->Encode(body);
    auto got = p.gguf->Encode(body);
    ASSERT_TRUE(want.ok() && got.ok());
    EXPECT_EQ(*got, *want) << family << " corpus " << doc.value("name", "");
    auto plain = p.gguf->Encode(body, {.add_special_tokens = false});
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ(*plain, doc["ids"].get<std::vector<int32_t>>()) << family << " corpus (HF ids)";
    n_ids += got->size();
    auto dj = p.json->Decode(*want, true);
    auto dg = p.gguf->Decode(*got, true);
    ASSERT_TRUE(dj.ok() && dg.ok());
    if (check_decode) {
      EXPECT_EQ(*dg, *dj) << family << " corpus decode " << doc.value("name", "");
    }
  }
  std::printf("%s via GGUF: %zu cases, %zu corpus ids\n", family.c_str(), cases.size(), n_ids);
}

TEST(GgufTokenizerGolden, Qwen3Gpt2Qwen2Pre) {
  // Padded to the model's 151936 embedding rows as convert does.
  CheckFamily("qwen3", Fixture("qwen3-tiny"), 151936, true);
}
TEST(GgufTokenizerGolden, Llama2SentencePiece) {
  CheckFamily("llama2", Fixture("tokenizers/llama2"), 0, true);
}
// Llama-3's tokenizer_config sets clean_up_tokenization_spaces, which GGUF cannot express (llama.cpp
// never cleans up), so only ids are compared.
TEST(GgufTokenizerGolden, Llama3Gpt2LlamaBpePre) {
  CheckFamily("llama3", Fixture("tokenizers/llama3"), 0, false);
}

TEST(GgufTokenizerGolden, KeysAreLlamaCppShaped) {
  Pair p = LoadBoth(Fixture("qwen3-tiny"), "keys", 151936);
  ASSERT_TRUE(p.gguf);
  const Json& kv = p.metadata;
  EXPECT_EQ(kv["tokenizer.ggml.model"], "gpt2");
  EXPECT_EQ(kv["tokenizer.ggml.pre"], "qwen2");
  EXPECT_EQ(kv["tokenizer.ggml.tokens"].size(), 151936u);
  EXPECT_EQ(kv["tokenizer.ggml.token_type"].size(), 151936u);
  EXPECT_EQ(kv["tokenizer.ggml.merges"].size(), 151387u);
  EXPECT_EQ(kv["tokenizer.ggml.merges"][0], "Ġ Ġ");
  EXPECT_EQ(kv["tokenizer.ggml.token_type"][151644], 3);   // <|im_start|>: CONTROL
  EXPECT_EQ(kv["tokenizer.ggml.token_type"][151667], 4);   // <think>: USER_DEFINED
  EXPECT_EQ(kv["tokenizer.ggml.token_type"][151935], 5);   // padding: UNUSED
  EXPECT_EQ(kv["tokenizer.ggml.eos_token_id"], 151645);
  EXPECT_EQ(kv["tokenizer.ggml.add_bos_token"], false);
  EXPECT_EQ(kv["tokenizer.chat_template"], "{{ messages[0]['content'] }}");
  EXPECT_EQ(p.gguf->vocab_size(), 151936);
  EXPECT_TRUE(p.gguf->IsSpecial(151644));
  EXPECT_FALSE(p.gguf->IsSpecial(151667));

  Pair l = LoadBoth(Fixture("tokenizers/llama2"), "keys2", 0);
  ASSERT_TRUE(l.gguf);
  const Json& lk = l.metadata;
  EXPECT_EQ(lk["tokenizer.ggml.model"], "llama");
  EXPECT_FALSE(lk.contains("tokenizer.ggml.merges"));
  EXPECT_EQ(lk["tokenizer.ggml.scores"].size(), 32000u);
  EXPECT_EQ(lk["tokenizer.ggml.token_type"][0], 2);    // <unk>: UNKNOWN
  EXPECT_EQ(lk["tokenizer.ggml.token_type"][1], 3);    // <s>: CONTROL
  EXPECT_EQ(lk["tokenizer.ggml.token_type"][3], 6);    // <0x00>: BYTE
  EXPECT_EQ(lk["tokenizer.ggml.add_bos_token"], true);
  EXPECT_EQ(lk["tokenizer.ggml.add_space_prefix"], true);
  EXPECT_EQ(lk["tokenizer.ggml.unknown_token_id"], 0);
}

}  // namespace
}  // namespace petrel::tokenizer
