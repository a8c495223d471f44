// Post-processors: add the special tokens a model expects around a sequence (BOS/EOS) when
// encoding with add_special_tokens. TemplateProcessing, BertProcessing, RobertaProcessing,
// ByteLevel (offsets only: no effect on ids) and Sequence are supported, for single sequences.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"

namespace petrel::tokenizer {

class PostProcessor {
 public:
  // Builds from the "post_processor" member. Bert/Roberta store [token, id] pairs (the id is
  // used). `id_limit` bounds every special id (ids >= it are kOutOfRange errors).
  static Result<std::unique_ptr<PostProcessor>> FromJson(const Json& j, const std::string& path,
                                                         int32_t id_limit);

  // Rewrites `ids` (one encoded sequence) into the final sequence: the template's special ids
  // around it. Thread-safe.
  void Apply(std::vector<int32_t>* ids) const;

  // Number of ids Apply adds (what the template would insert).
  size_t added_count() const;

 private:
  // A flattened template: -1 entries stand for "the sequence", others are special ids.
  std::vector<int32_t> items_;
  bool has_template_ = false;
  static Status Parse(const Json& j, const std::string& path, int32_t id_limit,
                      std::vector<int32_t>* items, bool* has_template);
};

}  // namespace petrel::tokenizer
