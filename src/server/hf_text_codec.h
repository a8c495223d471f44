// The production TextCodec: petrel::tokenizer (tokenizer.json) and petrel::jinja::ChatTemplate
// from a Hugging Face model directory.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "server/text_codec.h"

namespace petrel::tokenizer {
class Tokenizer;
}
namespace petrel::jinja {
class ChatTemplate;
}

namespace petrel::server {

// Loads MODEL_DIR's tokenizer (required) and chat template (optional: without one,
// /v1/chat/completions answers 400 and the other routes work).
Result<std::unique_ptr<TextCodec>> LoadHfTextCodec(const std::string& model_dir);
// The same from a tokenizer and template loaded by the caller (e.g. from a GGUF file's metadata);
// `tpl` may be an error: chat completions then answer 400 with its message.
std::unique_ptr<TextCodec> MakeHfTextCodec(std::unique_ptr<tokenizer::Tokenizer> tok,
                                           Result<jinja::ChatTemplate> tpl);

}  // namespace petrel::server
