// Tokenizer::Load: tokenizer.json (+ tokenizer_config.json) -> pipeline components. The two
// big members (model.vocab, model.merges) are read by json_scan.cc straight from the text; the
// rest of the file is parsed by nlohmann with those two members cut out (see json_scan.h for
// why). Every error names the field it comes from.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_get.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

namespace {

constexpr int64_t kMaxAddedId = (1 << 24) - 1;

// The text with the vocab and merges values replaced by empty containers.
std::string WithoutBigMembers(std::string_view json, const BigMembers& big) {
  struct Cut {
    Span span;
    const char* repl;
  };
  std::vector<Cut> cuts;
  if (big.has_vocab) cuts.push_back({big.vocab, "{}"});
  if (big.has_merges) cuts.push_back({big.merges, "[]"});
  std::sort(cuts.begin(), cuts.end(),
            [](const Cut& a, const Cut& b) { return a.span.begin < b.span.begin; });
  std::string out;
  size_t prev = 0;
  for (const Cut& c : cuts) {
    out.append(json.substr(prev, c.span.begin - prev));
    out.append(c.repl);
    prev = c.span.end;
  }
  out.append(json.substr(prev));
  return out;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("cannot open ", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return IoError("error reading ", path);
  return ss.str();
}

// bos_token / eos_token in tokenizer_config.json: a string, or an AddedToken-like object with
// "content", or null.
Result<std::string> ConfigToken(const Json& cfg, std::string_view key) {
  const Json* v = Find(cfg, key);
  if (v == nullptr) return std::string();
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    const Json* c = Find(*v, "content");
    if (c != nullptr && c->is_string()) return c->get<std::string>();
  }
  return InvalidFormat("tokenizer_config.json: field \"", key,
                       "\" must be a string or an object with \"content\"");
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromDirectory(const std::string& model_dir) {
  const std::string path = model_dir + "/tokenizer.json";
  {
    std::ifstream probe(path);
    if (!probe) return NotFound("no tokenizer.json in ", model_dir);
  }
  PETREL_TRY(std::string json, ReadWholeFile(path));
  std::string config;
  const std::string config_path = model_dir + "/tokenizer_config.json";
  if (std::ifstream(config_path)) {
    PETREL_TRY(config, ReadWholeFile(config_path));
  }
  auto r = FromJson(json, config);
  if (!r.ok()) return r.error().WithContext("loading tokenizer from " + model_dir);
  return r;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view tokenizer_json,
                                                       std::string_view tokenizer_config_json) {
  auto tok = std::unique_ptr<Tokenizer>(new Tokenizer());
  PETREL_TRY(tok->Load(tokenizer_json, tokenizer_config_json));
  return tok;
}

// Order matters: the model first (it defines the vocabulary size), then added tokens (they
// may extend it), then the components (the post-processor checks its ids against the final
// size), then the matchers (normalized added tokens need the normalizer).
Status Tokenizer::Load(std::string_view json, std::string_view config_json) {
  PETREL_TRY(BigMembers big, LocateBigMembers(json));
  PETREL_TRY(Json root, ParseJson(WithoutBigMembers(json, big), "tokenizer.json"));
  if (!root.is_object()) return InvalidFormat("tokenizer.json: top level must be an object");

  // Model: BPE only. `tokenizers` infers an untagged model from its fields; a file without
  // "type" but with merges is BPE.
  const Json* model = Find(root, "model");
  if (model == nullptr || !model->is_object()) {
    return InvalidFormat("tokenizer.json: missing object field \"model\"");
  }
  PETREL_TRY(std::string type, GetStringOr(*model, "type", "model", big.has_merges ? "BPE" : ""));
  if (type == "WordPiece" || type == "Unigram" || type == "WordLevel") {
    return Unsupported("tokenizer.json: model type \"", type,
                       "\" is not supported yet: petrel implements BPE models only "
                       "(byte-level like GPT-2/Llama 3/Qwen, or SentencePiece-style like Llama 2)");
  }
  if (type != "BPE") {
    return Unsupported("tokenizer.json: model type \"", type, "\" is not supported (BPE only)");
  }
  PETREL_TRY(model_, BpeModel::FromJson(*model, json, big));
  vocab_size_ = model_->id_limit();

  // Added tokens.
  if (const Json* list = Find(root, "added_tokens")) {
    if (!list->is_array()) return InvalidFormat("tokenizer.json: added_tokens must be an array");
    for (size_t i = 0; i < list->size(); ++i) {
      const Json& t = (*list)[i];
      const std::string path = "added_tokens[" + std::to_string(i) + "]";
      if (!t.is_object()) return FormatError(path, "must be an object");
      const Json* id = Find(t, "id");
      if (id == nullptr || !id->is_number_integer()) {
        return FormatError(path, "missing integer field \"id\"");
      }
      AddedToken a;
      PETREL_TRY(a.content, GetString(t, "content", path));
      const int64_t id64 = id->get<int64_t>();
      if (id64 < 0 || id64 > kMaxAddedId) {
        return OutOfRange("tokenizer.json: ", path, ": id ", id64, " is out of range [0, ",
                          kMaxAddedId, "]");
      }
      a.id = static_cast<int32_t>(id64);
      PETREL_TRY(a.special, GetBoolOr(t, "special", path, false));
      PETREL_TRY(a.single_word, GetBoolOr(t, "single_word", path, false));
      PETREL_TRY(a.lstrip, GetBoolOr(t, "lstrip", path, false));
      PETREL_TRY(a.rstrip, GetBoolOr(t, "rstrip", path, false));
      PETREL_TRY(a.normalized, GetBoolOr(t, "normalized", path, !a.special));
      if (!utf8::IsValid(a.content)) return FormatError(path, "content is not valid UTF-8");
      vocab_size_ = std::max(vocab_size_, a.id + 1);
      added_.push_back(std::move(a));
    }
  }

  // Pipeline components; null (or absent) means "none".
  if (const Json* n = Find(root, "normalizer")) {
    PETREL_TRY(normalizer_, Normalizer::FromJson(*n, "normalizer"));
  }
  if (const Json* p = Find(root, "pre_tokenizer")) {
    PETREL_TRY(pre_tokenizer_, PreTokenizer::FromJson(*p, "pre_tokenizer"));
  }
  if (const Json* p = Find(root, "post_processor")) {
    PETREL_TRY(post_processor_, PostProcessor::FromJson(*p, "post_processor", vocab_size_));
  }
  if (const Json* d = Find(root, "decoder")) {
    PETREL_TRY(decoder_, Decoder::FromJson(*d, "decoder"));
  }

  // Id tables and the two matchers. Normalized tokens match their normalized form.
  added_by_id_.assign(vocab_size_, -1);
  special_.assign(vocab_size_, 0);
  std::vector<std::pair<std::string, const AddedToken*>> raw, norm;
  RegexScratch rs;
  for (size_t i = 0; i < added_.size(); ++i) {
    const AddedToken& a = added_[i];
    if (added_by_id_[a.id] < 0) added_by_id_[a.id] = static_cast<int32_t>(i);
    if (a.special) special_[a.id] = 1;
    if (!a.normalized) {
      raw.emplace_back(a.content, &a);
    } else if (normalizer_) {
      std::string out, tmp;
      PETREL_TRY(normalizer_->Normalize(a.content, &out, &tmp, rs));
      norm.emplace_back(std::move(out), &a);
    } else {
      norm.emplace_back(a.content, &a);
    }
  }
  // Decoding skips by token string in `tokenizers`: a model token spelled like a special token
  // is skipped too.
  for (const AddedToken& a : added_) {
    if (!a.special) continue;
    int32_t id = model_->TokenToId(a.content);
    if (id >= 0) special_[id] = 1;
  }
  raw_matcher_ = std::make_unique<AddedTokenMatcher>();
  raw_matcher_->Build(std::move(raw));
  norm_matcher_ = std::make_unique<AddedTokenMatcher>();
  norm_matcher_->Build(std::move(norm));

  if (!config_json.empty()) PETREL_TRY(LoadConfig(config_json));
  return OkStatus();
}

// tokenizer_config.json: only the fields the tokenizer itself needs. add_bos_token /
// add_eos_token are not applied: `tokenizers` (and so the references) use the post-processor in
// tokenizer.json, which for the supported families already encodes the same choice.
Status Tokenizer::LoadConfig(std::string_view config_json) {
  PETREL_TRY(Json cfg, ParseJson(config_json, "tokenizer_config.json"));
  if (!cfg.is_object()) return InvalidFormat("tokenizer_config.json: top level must be an object");
  PETREL_TRY(bos_token_, ConfigToken(cfg, "bos_token"));
  PETREL_TRY(eos_token_, ConfigToken(cfg, "eos_token"));
  if (!bos_token_.empty()) bos_id_ = TokenToId(bos_token_);
  if (!eos_token_.empty()) eos_id_ = TokenToId(eos_token_);
  const Json* clean = Find(cfg, "clean_up_tokenization_spaces");
  if (clean != nullptr) {
    if (!clean->is_boolean()) {
      return InvalidFormat(
          "tokenizer_config.json: field \"clean_up_tokenization_spaces\" must be a boolean");
    }
    clean_up_spaces_ = clean->get<bool>();
  }
  return OkStatus();
}

}  // namespace petrel::tokenizer
