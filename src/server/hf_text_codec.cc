#include "server/hf_text_codec.h"

#include "core/log.h"
#include "template/chat_template.h"
#include "template/output_parser.h"
#include "tokenizer/tokenizer.h"

namespace petrel::server {

namespace {

class HfStream : public TextStream {
 public:
  HfStream(const tokenizer::Tokenizer& tok, bool skip_special) : detok_(tok, skip_special) {}
  std::string Add(int32_t token) override { return detok_.Push(token); }
  std::string Finish() override { return detok_.Flush(); }

 private:
  tokenizer::IncrementalDetokenizer detok_;
};

// petrel::jinja's output parser behind the server's ChatParser interface.
class HfChatParser : public ChatParser {
 public:
  explicit HfChatParser(const jinja::OutputParserOptions& o) : p_(jinja::MakeOutputParser(o)) {}
  ChatDelta Feed(std::string_view text) override { return Convert(p_->Feed(text)); }
  ChatDelta Finish() override {
    ChatDelta d = Convert(p_->Finish());
    for (const auto& c : p_->tool_calls()) calls_.push_back({c.id, c.name, c.arguments});
    return d;
  }
  const std::vector<ToolCall>& tool_calls() const override { return calls_; }

 private:
  static ChatDelta Convert(jinja::OutputDelta d) {
    return ChatDelta{std::move(d.content), std::move(d.reasoning_content)};
  }
  std::unique_ptr<jinja::OutputParser> p_;
  std::vector<ToolCall> calls_;
};

class HfTextCodec : public TextCodec {
 public:
  HfTextCodec(std::unique_ptr<tokenizer::Tokenizer> tok, std::optional<jinja::ChatTemplate> tpl,
              std::string template_error)
      : tok_(std::move(tok)), tpl_(std::move(tpl)), template_error_(std::move(template_error)) {
    // Reasoning and tool-call splitting only for tokenizers that have the markers as tokens
    // (Qwen3, Hermes-style models); other models' answers are plain content.
    reasoning_ = tok_->TokenToId("<think>").has_value() && tok_->TokenToId("</think>").has_value();
    tools_ = tok_->TokenToId("<tool_call>").has_value();
  }

  Result<std::vector<int32_t>> Encode(std::string_view text,
                                      bool add_special_tokens) const override {
    tokenizer::EncodeOptions o;
    o.add_special_tokens = add_special_tokens;
    o.parse_special = true;
    return tok_->Encode(text, o);
  }
  Result<std::string> Decode(std::span<const int32_t> ids,
                             bool skip_special_tokens) const override {
    return tok_->Decode(ids, skip_special_tokens);
  }
  std::string TokenText(int32_t id) const override {
    auto s = tok_->Decode(std::span<const int32_t>(&id, 1), false);
    return s.ok() ? std::move(s).value() : std::string();
  }
  std::unique_ptr<TextStream> NewStream(bool skip_special_tokens) const override {
    return std::make_unique<HfStream>(*tok_, skip_special_tokens);
  }
  int vocab_size() const override { return tok_->vocab_size(); }

  Result<std::string> ApplyChatTemplate(const OrderedJson& messages, const OrderedJson& tools,
                                        bool add_generation_prompt,
                                        const Json& kwargs) const override {
    if (!tpl_) return InvalidArgument("this model has no chat template (", template_error_, ")");
    jinja::ApplyOptions o;
    o.add_generation_prompt = add_generation_prompt;
    o.kwargs = kwargs.is_object() ? kwargs : Json::object();
    // vLLM's convention: assistant tool_calls arguments given as JSON strings become objects.
    o.parse_tool_call_arguments = true;
    return tpl_->Apply(messages, tools, o);
  }
  std::unique_ptr<ChatParser> NewChatParser(std::string_view prompt,
                                            bool parse_tools) const override {
    jinja::OutputParserOptions o;
    o.reasoning = reasoning_;
    o.starts_in_reasoning = reasoning_ && jinja::PromptOpensReasoning(prompt);
    o.tool_calls =
        parse_tools && tools_ ? jinja::ToolCallFormat::kHermes : jinja::ToolCallFormat::kNone;
    return std::make_unique<HfChatParser>(o);
  }

 private:
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  std::optional<jinja::ChatTemplate> tpl_;
  std::string template_error_;
  bool reasoning_ = false;
  bool tools_ = false;
};

}  // namespace

Result<std::unique_ptr<TextCodec>> LoadHfTextCodec(const std::string& model_dir) {
  auto tok = tokenizer::Tokenizer::FromDirectory(model_dir);
  if (!tok.ok()) return tok.error().WithContext("loading the tokenizer of " + model_dir);
  return MakeHfTextCodec(std::move(tok).value(), jinja::ChatTemplate::FromModelDir(model_dir));
}

std::unique_ptr<TextCodec> MakeHfTextCodec(std::unique_ptr<tokenizer::Tokenizer> tok,
                                           Result<jinja::ChatTemplate> t) {
  std::optional<jinja::ChatTemplate> tpl;
  std::string template_error;
  if (t.ok()) {
    tpl = std::move(t).value();
  } else {
    template_error = t.error().message;
    LogWarn("no usable chat template: ", template_error,
            " (/v1/chat/completions will answer 400)");
  }
  return std::make_unique<HfTextCodec>(std::move(tok), std::move(tpl), template_error);
}

}  // namespace petrel::server
