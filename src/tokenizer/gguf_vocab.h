// The tokenizer stored in GGUF metadata (llama.cpp's `tokenizer.ggml.*` keys, ggml docs/gguf.md)
// in both directions:
//
//   GGUF -> petrel: GgufToHfTokenizer() writes the equivalent tokenizer.json (+ a small
//     tokenizer_config.json) and Tokenizer::FromGgufMetadata() loads it through the ordinary
//     tokenizer.json path, so a GGUF vocabulary runs on exactly the BPE model, pre-tokenizers,
//     normalizers and decoders that are golden-tested against Hugging Face (this is also how
//     transformers reads a GGUF tokenizer: it builds a `tokenizers` object from the same keys).
//   petrel -> GGUF: HfTokenizerToGguf() turns a tokenizer.json into the keys llama.cpp reads
//     (`petrel convert --to gguf`).
//
// Supported vocabularies:
//   - `gpt2`: byte-level BPE. tokens + merges ("a b"); token_type CONTROL (3) / USER_DEFINED (4)
//     become special / plain added tokens; `tokenizer.ggml.pre` names the pre-tokenizer split
//     regex: qwen2 (+ NFC, as Qwen's tokenizer.json; llama.cpp itself skips NFC), llama-bpe /
//     llama3 / llama-v3 / falcon3 / pixtral (with ignore_merges), gpt-2 and an absent or "default"
//     pre (GPT-2's regex, which old GGUFs without `pre` were split with; llama.cpp's own
//     "default" split differs slightly). Any other `pre` is refused by name.
//   - `llama`: SentencePiece BPE. tokens + scores; merges are rebuilt from the scores the way
//     transformers' SentencePieceExtractor does (every split of a NORMAL token whose two halves
//     are tokens, ranked by the merged token's score), byte fallback through the <0xXX> tokens,
//     "▁" for spaces with add_space_prefix, unknown characters -> the unknown token.
// BOS/EOS are added per add_bos_token / add_eos_token (defaults: llama yes/no, gpt2 no/no);
// `tokenizer.chat_template` is passed through as the config's chat_template.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"

namespace petrel::tokenizer {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type / gguf-py TokenType).
enum class GgufTokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct HfTokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;  // bos_token, eos_token, chat_template, ...
};

// GGUF metadata (GgufFile::metadata(): keys -> JSON values) -> tokenizer.json text. Errors name
// the key (and element) at fault: kNotFound when there is no tokenizer.ggml.model, kInvalidFormat
// for missing keys / wrong types / merges naming unknown tokens, kOutOfRange for special token ids
// outside the vocabulary, kUnsupported for other models (bert, t5, rwkv, ...) and unknown `pre`.
Result<HfTokenizerFiles> GgufToHfTokenizer(const Json& kv);

// What HfTokenizerToGguf cannot read from tokenizer.json itself.
struct GgufVocabOptions {
  // The token list is padded with "[PAD<id>]" UNUSED tokens up to this many entries (llama.cpp
  // wants one token per embedding row).
  int64_t min_tokens = 0;
  // Used when tokenizer_config.json does not name the token (config.json's ids).
  std::optional<int32_t> bos_id, eos_id;
  // Another end-of-generation id (generation_config's second eos), written as eot_token_id.
  std::optional<int32_t> eot_id;
  std::string chat_template;  // written as tokenizer.chat_template when not empty
};

// tokenizer.json (+ tokenizer_config.json, may be empty) -> tokenizer.ggml.* keys added to `*kv`.
// Byte-level BPE files become `gpt2` (pre-tokenizer recognised from its split regex: qwen2,
// llama-bpe, gpt-2); SentencePiece-style BPE files (byte fallback, "▁") become `llama` with
// scores that rebuild the same merge order. Anything else is kUnsupported, by name.
Status HfTokenizerToGguf(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                         const GgufVocabOptions& opts, OrderedJson* kv);

}  // namespace petrel::tokenizer
