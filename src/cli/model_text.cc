#include "cli/model_text.h"

#include <filesystem>
#include <mutex>

#include "formats/gguf.h"

namespace petrel::cli {

namespace {

// The GGUF metadata of `path`, parsed once per process (the tokenizer and the template both
// need it; a 150k-token vocabulary is worth not parsing twice).
Result<std::shared_ptr<const Json>> GgufMetadata(const std::string& path) {
  static std::mutex mu;
  static std::string cached_path;
  static std::shared_ptr<const Json> cached;
  std::lock_guard<std::mutex> lock(mu);
  if (cached && cached_path == path) return cached;
  PETREL_TRY(formats::GgufFile f, formats::GgufFile::Open(path));
  cached = std::make_shared<const Json>(f.metadata());
  cached_path = path;
  return cached;
}

std::string ParentDir(const std::string& path) {
  std::string p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

// The text of token `key`'s id in the metadata, or "".
std::string TokenText(const Json& kv, const char* key) {
  auto id = kv.find(key);
  auto tokens = kv.find("tokenizer.ggml.tokens");
  if (id == kv.end() || tokens == kv.end() || !id->is_number_unsigned() || !tokens->is_array()) return "";
  const uint64_t i = id->get<uint64_t>();
  return i < tokens->size() && (*tokens)[i].is_string() ? (*tokens)[i].get<std::string>() : "";
}

}  // namespace

bool IsGgufPath(const std::string& model) { return model.ends_with(".gguf"); }

Result<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizer(const std::string& model) {
  if (!IsGgufPath(model)) return tokenizer::Tokenizer::FromDirectory(model);
  PETREL_TRY(std::shared_ptr<const Json> kv, GgufMetadata(model));
  if (!kv->contains("tokenizer.ggml.model")) {
    auto r = tokenizer::Tokenizer::FromDirectory(ParentDir(model));
    if (!r.ok()) {
      return NotFound(model, " has no tokenizer.ggml.* metadata and there is no tokenizer.json beside it");
    }
    return r;
  }
  auto r = tokenizer::Tokenizer::FromGgufMetadata(*kv);
  if (!r.ok()) return r.error().WithContext("loading the tokenizer of " + model);
  return r;
}

Result<jinja::ChatTemplate> LoadChatTemplate(const std::string& model) {
  if (!IsGgufPath(model)) return jinja::ChatTemplate::FromModelDir(model);
  PETREL_TRY(std::shared_ptr<const Json> kv, GgufMetadata(model));
  auto t = kv->find("tokenizer.chat_template");
  if (t == kv->end()) {
    auto r = jinja::ChatTemplate::FromModelDir(ParentDir(model));
    if (!r.ok()) return NotFound(model, " has no tokenizer.chat_template (and no chat template beside it)");
    return r;
  }
  if (!t->is_string()) return InvalidFormat(model, ": tokenizer.chat_template must be a string");
  return jinja::ChatTemplate::FromSource(t->get<std::string>(),
                                         TokenText(*kv, "tokenizer.ggml.bos_token_id"),
                                         TokenText(*kv, "tokenizer.ggml.eos_token_id"));
}

}  // namespace petrel::cli
