// Hugging Face tokenizer.json in C++: text -> ids exactly as the `tokenizers` library produces
// them, ids -> text as transformers' decode() does, and a streaming detokenizer.
//
//   auto tok = Tokenizer::FromDirectory("models/Qwen3-0.6B");        // Result<unique_ptr<...>>
//   auto ids = (*tok)->Encode("Hello world");                         // Result<vector<int32_t>>
//   auto text = (*tok)->Decode(*ids);                                 // Result<string>
//
// The pipeline (see the per-stage headers): added tokens are cut out of the raw input, the rest
// is normalized, normalized added tokens are cut out, pre-tokenized into words, each word goes
// through BPE, and the post-processor adds BOS/EOS. Only BPE models are supported; WordPiece
// and Unigram files are refused at load with an kUnsupported error.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"

namespace petrel::tokenizer {

class AddedTokenMatcher;
struct AddedToken;
class BpeModel;
class Decoder;
class Normalizer;
class PostProcessor;
class PreTokenizer;
struct EncodeScratch;

struct EncodeOptions {
  // Run the post-processor (BOS/EOS), as transformers' tokenizer(text) does.
  bool add_special_tokens = true;
  // false: special-token text in the input ("<|im_start|>") is tokenized as plain text, so user
  // content cannot inject control tokens (`split_special_tokens` in transformers).
  bool parse_special = true;
};

class Tokenizer {
 public:
  // Loads MODEL_DIR/tokenizer.json and, when present, MODEL_DIR/tokenizer_config.json.
  // Errors: kNotFound (no tokenizer.json), kIo, kInvalidFormat (malformed JSON, missing fields,
  // bad regex, merges naming unknown tokens), kOutOfRange (ids), kUnsupported (WordPiece,
  // Unigram, unknown component types).
  static Result<std::unique_ptr<Tokenizer>> FromDirectory(const std::string& model_dir);
  // Same from the file contents; `tokenizer_config_json` may be empty.
  static Result<std::unique_ptr<Tokenizer>> FromJson(std::string_view tokenizer_json,
                                                     std::string_view tokenizer_config_json);
  // From GGUF metadata (the tokenizer.ggml.* keys; see gguf_vocab.h), e.g. GgufFile::metadata().
  static Result<std::unique_ptr<Tokenizer>> FromGgufMetadata(const Json& kv);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text -> ids. `text` must be valid UTF-8 (kInvalidArgument otherwise, with the byte offset).
  // Thread-safe: any number of threads may encode at once (each borrows a scratch buffer).
  Result<std::vector<int32_t>> Encode(std::string_view text, const EncodeOptions& opts = {}) const;

  // Ids -> text, as transformers' decode(ids, skip_special_tokens) with the config's
  // clean_up_tokenization_spaces. kOutOfRange for an id that names no token. Thread-safe.
  Result<std::string> Decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Token strings of `ids` ("" for ids that name no token). Thread-safe.
  std::vector<std::string> IdsToTokens(std::span<const int32_t> ids) const;
  // The id of a token string (added tokens first, then the model vocabulary).
  std::optional<int32_t> TokenToId(std::string_view token) const;

  // 1 + the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const { return vocab_size_; }
  // Whether `id` is a special added token (skipped by skip_special_tokens).
  bool IsSpecial(int32_t id) const;
  // From tokenizer_config.json bos_token / eos_token (absent, null or unknown -> nullopt / "").
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  std::string bos_token() const { return bos_token_; }
  std::string eos_token() const { return eos_token_; }
  bool clean_up_tokenization_spaces() const { return clean_up_spaces_; }

 private:
  Tokenizer();
  Status Load(std::string_view tokenizer_json, std::string_view tokenizer_config_json);
  Status LoadConfig(std::string_view tokenizer_config_json);
  Status EncodeInto(std::string_view text, const EncodeOptions& opts, EncodeScratch& s,
                    std::vector<int32_t>* ids) const;
  // The token string of `id`, or nullptr.
  const std::string* IdToTokenPtr(int32_t id) const;
  std::unique_ptr<EncodeScratch> AcquireScratch() const;
  void ReleaseScratch(std::unique_ptr<EncodeScratch> s) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<AddedToken> added_;                    // in file order
  std::unique_ptr<AddedTokenMatcher> raw_matcher_;   // normalized = false tokens
  std::unique_ptr<AddedTokenMatcher> norm_matcher_;  // normalized = true tokens
  std::vector<int32_t> added_by_id_;                 // id -> index into added_, -1 when not added
  std::vector<uint8_t> special_;                     // id -> 1 when special
  int32_t vocab_size_ = 0;

  std::optional<int32_t> bos_id_, eos_id_;
  std::string bos_token_, eos_token_;
  bool clean_up_spaces_ = false;

  // Pool of scratch buffers for concurrent Encode calls (no allocation once warm).
  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<EncodeScratch>> pool_;
};

// Streaming detokenizer for one sequence. Push() returns the text that became final with this
// id: never a partial UTF-8 character (held back until its last byte arrives), and never text a
// later id could still change. Invariant: the concatenation of every Push() and the final
// Flush() equals tok.Decode(all ids, skip_special_tokens). Not thread-safe (one per sequence);
// `tok` must outlive it.
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens);
  // Adds one id; returns newly completed text (may be empty). An id out of range is ignored
  // here and reported by Decode; streaming must not fail mid-way.
  std::string Push(int32_t id);
  // Returns whatever is left at the end of the stream.
  std::string Flush();

 private:
  // Decodes ids_[from, to) ("" on error).
  std::string DecodeRange(size_t from, size_t to) const;

  const Tokenizer& tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  // Ids before prefix_offset_ are settled; the text of [prefix_offset_, read_offset_) was
  // already returned. Decoding from prefix_offset_ keeps context (leading-space rules) stable.
  size_t prefix_offset_ = 0;
  size_t read_offset_ = 0;
};

}  // namespace petrel::tokenizer
