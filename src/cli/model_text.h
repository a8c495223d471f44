// The tokenizer and chat template of a model given either as a Hugging Face directory
// (tokenizer.json, tokenizer_config.json / chat_template.jinja) or as a .gguf file (its
// tokenizer.ggml.* keys and tokenizer.chat_template; a GGUF without them falls back to the HF
// files in the directory that holds it).
#pragma once

#include <memory>
#include <string>

#include "core/error.h"
#include "template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace petrel::cli {

// True when `model` names a .gguf file rather than a model directory.
bool IsGgufPath(const std::string& model);

Result<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizer(const std::string& model);
Result<jinja::ChatTemplate> LoadChatTemplate(const std::string& model);

}  // namespace petrel::cli
