// Chat messages -> prompt ids with the model's chat template (shared by chat and generate --chat).
#pragma once

#include <vector>

#include "core/json_util.h"
#include "template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace petrel::cli {

// Renders `messages` with add_generation_prompt and `kwargs`, then tokenizes without adding
// special tokens again (as apply_chat_template(tokenize=True) does).
Result<std::vector<int32_t>> ChatPromptIds(const tokenizer::Tokenizer& tok, const jinja::ChatTemplate& tpl,
                                           const Json& messages, const Json& kwargs);

}  // namespace petrel::cli
