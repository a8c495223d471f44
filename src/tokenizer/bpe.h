// The BPE model: words (pre-tokenizer pieces) -> token ids by applying ranked merges, with
// byte_fallback, unk_token / fuse_unk, continuing_subword_prefix, end_of_word_suffix and
// ignore_merges as in `tokenizers` (models/bpe/model.rs, word.rs). Results are cached per word
// in a bounded per-scratch cache, so repeated words (most of real text) cost one hash lookup.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/string_map.h"

namespace petrel::tokenizer {

// Reusable state for BPE on one thread: symbol list, merge queue and the word cache.
struct BpeScratch {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t len;  // bytes of the word covered; 0 once merged into its left neighbour
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
  };
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::string buf;
  // Word cache: word -> [offset, offset + len) in cache_ids. Cleared when full.
  StringIdMap cache_keys;
  std::vector<std::pair<uint32_t, uint32_t>> cache_entries;
  std::vector<int32_t> cache_ids;
};

class BpeModel {
 public:
  // Words longer than this (bytes) are not cached (`tokenizers` uses the same bound).
  static constexpr size_t kMaxCachedWordLen = 256;
  // The cache is cleared once it holds this many words.
  static constexpr size_t kCacheCapacity = 1 << 16;

  // Builds from the "model" object (`model`, without vocab/merges: those are read straight
  // from `json_text` at the spans in `big`). Errors name the offending token or merge.
  static Result<std::unique_ptr<BpeModel>> FromJson(const Json& model, std::string_view json_text,
                                                    const BigMembers& big);

  // Appends the ids of `word` to `*out`. Fails only when an unknown character has no byte
  // fallback and the model has no unk_token (as `tokenizers` does). Thread-safe.
  Status Tokenize(std::string_view word, BpeScratch& s, std::vector<int32_t>* out) const;

  // Vocabulary lookups (model vocabulary only, not added tokens).
  int32_t TokenToId(std::string_view token) const { return vocab_.Find(token); }
  // The token of `id`, or nullptr when the model has no such id.
  const std::string* IdToToken(int32_t id) const {
    return id >= 0 && id < static_cast<int32_t>(id_to_token_.size()) && has_id_[id]
               ? &id_to_token_[id]
               : nullptr;
  }
  // 1 + the largest id in the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  // Runs merge_word + merge_all on an uncached word.
  Status MergeWord(std::string_view word, BpeScratch& s, std::vector<int32_t>* out) const;
  // The rank/new id of merging (a, b), or nullptr.
  const uint64_t* FindMerge(int32_t a, int32_t b) const {
    return merges_.Find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
  }

  StringIdMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  PairMap merges_;  // (a << 32 | b) -> (rank << 32 | new_id)
  // Single-character tokens for code points < 0x10000 (-1: not in vocab), used when there is
  // no prefix/suffix so the initial symbols need no string lookups.
  std::vector<int32_t> char_ids_;
  int32_t byte_ids_[256];  // "<0xXX>" tokens for byte_fallback, -1 when absent
  bool has_all_byte_ids_ = false;

  int32_t unk_id_ = -1;
  std::string unk_token_;
  std::string prefix_;  // continuing_subword_prefix
  std::string suffix_;  // end_of_word_suffix
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
};

}  // namespace petrel::tokenizer
