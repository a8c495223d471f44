#include "cli/model_text.h"

#include <filesystem>
#include <mutex>
#include <optional>

#include "formats/gguf.h"

namespace petrel::cli {

namespace {

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

// What the chat template needs from a GGUF file: remembered when the tokenizer is loaded, so the
// (large) metadata is parsed once per process and not kept afterwards.
struct TemplateInfo {
  std::string path;
  bool has_template = false;
  bool template_is_string = false;
  std::string source, bos, eos;
};
std::mutex g_mu;
std::optional<TemplateInfo> g_info;

void RememberTemplateInfo(const std::string& path, const Json& kv) {
  TemplateInfo info;
  info.path = path;
  auto t = kv.find("tokenizer.chat_template");
  info.has_template = t != kv.end();
  info.template_is_string = info.has_template && t->is_string();
  if (info.template_is_string) info.source = t->get<std::string>();
  info.bos = TokenText(kv, "tokenizer.ggml.bos_token_id");
  info.eos = TokenText(kv, "tokenizer.ggml.eos_token_id");
  std::lock_guard<std::mutex> lock(g_mu);
  g_info = std::move(info);
}

}  // namespace

bool IsGgufPath(const std::string& model) { return model.ends_with(".gguf"); }

Result<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizer(const std::string& model) {
  if (!IsGgufPath(model)) return tokenizer::Tokenizer::FromDirectory(model);
  PETREL_TRY(formats::GgufFile f, formats::GgufFile::Open(model));
  const Json& kv = f.metadata();
  RememberTemplateInfo(model, kv);
  if (!kv.contains("tokenizer.ggml.model")) {
    auto r = tokenizer::Tokenizer::FromDirectory(ParentDir(model));
    if (!r.ok()) {
      return NotFound(model, " has no tokenizer.ggml.* metadata and there is no tokenizer.json beside it");
    }
    return r;
  }
  auto r = tokenizer::Tokenizer::FromGgufMetadata(kv);
  if (!r.ok()) return r.error().WithContext("loading the tokenizer of " + model);
  return r;
}

Result<jinja::ChatTemplate> LoadChatTemplate(const std::string& model) {
  if (!IsGgufPath(model)) return jinja::ChatTemplate::FromModelDir(model);
  std::optional<TemplateInfo> info;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_info && g_info->path == model) info = g_info;
  }
  if (!info) {
    PETREL_TRY(formats::GgufFile f, formats::GgufFile::Open(model));
    RememberTemplateInfo(model, f.metadata());
    std::lock_guard<std::mutex> lock(g_mu);
    info = g_info;
  }
  if (!info->has_template) {
    auto r = jinja::ChatTemplate::FromModelDir(ParentDir(model));
    if (!r.ok()) return NotFound(model, " has no tokenizer.chat_template (and no chat template beside it)");
    return r;
  }
  if (!info->template_is_string) return InvalidFormat(model, ": tokenizer.chat_template must be a string");
  return jinja::ChatTemplate::FromSource(info->source, info->bos, info->eos);
}

}  // namespace petrel::cli
