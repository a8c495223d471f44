#include "server/openai_protocol.h"

#include <cmath>
#include <limits>

namespace petrel::server {

namespace {

// Records the failing field and returns the error; every parse failure goes through here.
Error Fail(std::string* param, const std::string& field, const std::string& message) {
  if (param) *param = field;
  return InvalidArgument(message);
}

const char* TypeName(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::binary:
    case Json::value_t::discarded:
      return "value";
  }
  return "value";
}

// Looks up `key` in `obj`; absent and null both count as "not given".
const Json* Get(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<double>> GetNumber(const Json& obj, const char* key, double lo, double hi,
                                        std::string* param) {
  const Json* v = Get(obj, key);
  if (!v) return std::optional<double>();
  if (!v->is_number()) {
    return Fail(param, key, std::string("`") + key + "` must be a number, got " + TypeName(*v));
  }
  double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    return Fail(param, key,
                std::string("`") + key + "` must be in [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "], got " + std::to_string(d));
  }
  return std::optional<double>(d);
}

// Integers may arrive as 5 or 5.0; 5.5 and "5" are errors.
Result<int64_t> AsInt(const Json& v, const std::string& field, std::string* param) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      return Fail(param, field, "`" + field + "` is too large");
    }
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return int64_t(d);
  }
  return Fail(param, field, "`" + field + "` must be an integer, got " + TypeName(v));
}

Result<std::optional<int64_t>> GetInt(const Json& obj, const char* key, int64_t lo, int64_t hi,
                                      std::string* param) {
  const Json* v = Get(obj, key);
  if (!v) return std::optional<int64_t>();
  PETREL_TRY(int64_t i, AsInt(*v, key, param));
  if (i < lo || i > hi) {
    return Fail(param, key,
                std::string("`") + key + "` must be in [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "], got " + std::to_string(i));
  }
  return std::optional<int64_t>(i);
}

Result<std::optional<bool>> GetBool(const Json& obj, const char* key, std::string* param) {
  const Json* v = Get(obj, key);
  if (!v) return std::optional<bool>();
  if (!v->is_boolean()) {
    return Fail(param, key, std::string("`") + key + "` must be a boolean, got " + TypeName(*v));
  }
  return std::optional<bool>(v->get<bool>());
}

Result<std::optional<std::string>> GetString(const Json& obj, const char* key, std::string* param) {
  const Json* v = Get(obj, key);
  if (!v) return std::optional<std::string>();
  if (!v->is_string()) {
    return Fail(param, key, std::string("`") + key + "` must be a string, got " + TypeName(*v));
  }
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::vector<int32_t>> TokenIdList(const Json& arr, const std::string& field,
                                         std::string* param) {
  std::vector<int32_t> ids;
  ids.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string f = field + "." + std::to_string(i);
    PETREL_TRY(int64_t id, AsInt(arr[i], f, param));
    if (id < 0 || id > std::numeric_limits<int32_t>::max()) {
      return Fail(param, field, "`" + f + "` is not a valid token id: " + std::to_string(id));
    }
    ids.push_back(int32_t(id));
  }
  return ids;
}

// The fields chat and text completions share. `chat` selects the logprobs convention:
// chat has `logprobs: bool` + `top_logprobs: int`; completions have `logprobs: int`.
Status ParseGeneration(const Json& b, bool chat, GenerationOptions* g, std::string* param) {
  auto& s = g->sampling;
  PETREL_TRY(auto temperature, GetNumber(b, "temperature", 0.0, 100.0, param));
  g->has_temperature = temperature.has_value();
  if (temperature) s.temperature = float(*temperature);
  PETREL_TRY(auto top_p, GetNumber(b, "top_p", 0.0, 1.0, param));
  g->has_top_p = top_p.has_value();
  if (top_p) {
    if (*top_p <= 0.0) return Fail(param, "top_p", "`top_p` must be in (0, 1]");
    s.top_p = float(*top_p);
  }
  PETREL_TRY(auto top_k, GetInt(b, "top_k", -1, std::numeric_limits<int32_t>::max(), param));
  g->has_top_k = top_k.has_value();
  if (top_k) s.top_k = int(*top_k);
  PETREL_TRY(auto min_p, GetNumber(b, "min_p", 0.0, 1.0, param));
  g->has_min_p = min_p.has_value();
  if (min_p) s.min_p = float(*min_p);
  PETREL_TRY(auto presence, GetNumber(b, "presence_penalty", -2.0, 2.0, param));
  if (presence) s.presence_penalty = float(*presence);
  PETREL_TRY(auto frequency, GetNumber(b, "frequency_penalty", -2.0, 2.0, param));
  if (frequency) s.frequency_penalty = float(*frequency);
  PETREL_TRY(auto repetition, GetNumber(b, "repetition_penalty", 0.0, 100.0, param));
  g->has_repetition_penalty = repetition.has_value();
  if (repetition) {
    if (*repetition <= 0.0) {
      return Fail(param, "repetition_penalty", "`repetition_penalty` must be > 0");
    }
    s.repetition_penalty = float(*repetition);
  }
  if (const Json* lb = Get(b, "logit_bias")) {
    if (!lb->is_object()) {
      return Fail(
          param, "logit_bias",
          std::string("`logit_bias` must be an object of token id -> bias, got ") + TypeName(*lb));
    }
    for (auto it = lb->begin(); it != lb->end(); ++it) {
      const std::string& key = it.key();
      int64_t id = -1;
      bool ok = !key.empty() && key.size() <= 10;
      for (char c : key) ok = ok && c >= '0' && c <= '9';
      if (ok) id = std::stoll(key);
      if (!ok || id > std::numeric_limits<int32_t>::max()) {
        return Fail(param, "logit_bias", "`logit_bias` key \"" + key + "\" is not a token id");
      }
      if (!it.value().is_number() || !std::isfinite(it.value().get<double>())) {
        return Fail(param, "logit_bias", "`logit_bias." + key + "` must be a number");
      }
      // OpenAI documents [-100, 100]; clamp as vLLM does instead of refusing.
      float bias = float(it.value().get<double>());
      bias = std::fmax(-kMaxLogitBias, std::fmin(kMaxLogitBias, bias));
      s.logit_bias.emplace_back(int32_t(id), bias);
    }
  }
  if (const Json* seed = Get(b, "seed")) {
    PETREL_TRY(int64_t v, AsInt(*seed, "seed", param));
    s.seed = uint64_t(v);
  }

  // max_completion_tokens (newer OpenAI name) wins over max_tokens.
  PETREL_TRY(auto max_tokens,
             GetInt(b, "max_tokens", 1, std::numeric_limits<int32_t>::max(), param));
  PETREL_TRY(auto max_completion,
             GetInt(b, "max_completion_tokens", 1, std::numeric_limits<int32_t>::max(), param));
  if (max_completion) {
    g->max_tokens = int(*max_completion);
  } else if (max_tokens) {
    g->max_tokens = int(*max_tokens);
  }
  PETREL_TRY(auto n, GetInt(b, "n", 1, kMaxN, param));
  if (n) g->n = int(*n);

  if (const Json* stop = Get(b, "stop")) {
    if (stop->is_string()) {
      g->stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > size_t(kMaxStopStrings)) {
        return Fail(param, "stop",
                    "`stop` has more than " + std::to_string(kMaxStopStrings) + " strings");
      }
      for (const auto& s1 : *stop) {
        if (!s1.is_string()) return Fail(param, "stop", "`stop` must contain only strings");
        g->stop.push_back(s1.get<std::string>());
      }
    } else {
      return Fail(
          param, "stop",
          std::string("`stop` must be a string or a list of strings, got ") + TypeName(*stop));
    }
  }
  if (const Json* ids = Get(b, "stop_token_ids")) {
    if (!ids->is_array()) return Fail(param, "stop_token_ids", "`stop_token_ids` must be a list");
    PETREL_TRY(g->stop_token_ids, TokenIdList(*ids, "stop_token_ids", param));
  }
  PETREL_TRY(auto ignore_eos, GetBool(b, "ignore_eos", param));
  if (ignore_eos) g->ignore_eos = *ignore_eos;
  PETREL_TRY(auto skip_special, GetBool(b, "skip_special_tokens", param));
  if (skip_special) g->skip_special_tokens = *skip_special;
  PETREL_TRY(auto stream, GetBool(b, "stream", param));
  if (stream) g->stream = *stream;
  if (const Json* so = Get(b, "stream_options")) {
    if (!so->is_object())
      return Fail(param, "stream_options", "`stream_options` must be an object");
    if (const Json* iu = Get(*so, "include_usage")) {
      if (!iu->is_boolean()) {
        return Fail(param, "stream_options.include_usage",
                    "`stream_options.include_usage` must be a boolean");
      }
      g->include_usage = iu->get<bool>();
    }
  }

  if (chat) {
    PETREL_TRY(auto logprobs, GetBool(b, "logprobs", param));
    if (logprobs) g->logprobs = *logprobs;
    PETREL_TRY(auto top, GetInt(b, "top_logprobs", 0, kMaxTopLogprobs, param));
    if (top) {
      if (!g->logprobs && *top > 0) {
        return Fail(param, "top_logprobs", "`top_logprobs` requires `logprobs` to be true");
      }
      g->top_logprobs = int(*top);
    }
  } else {
    PETREL_TRY(auto logprobs, GetInt(b, "logprobs", 0, kMaxTopLogprobs, param));
    if (logprobs) {
      g->logprobs = true;
      g->top_logprobs = int(*logprobs);
    }
  }
  return OkStatus();
}

const char* const kRoles[] = {"system", "developer", "user", "assistant", "tool", "function"};

Status ValidateMessages(const Json& msgs, std::string* param) {
  if (!msgs.is_array()) {
    return Fail(param, "messages",
                std::string("`messages` must be a list of message objects, got ") + TypeName(msgs));
  }
  if (msgs.empty()) return Fail(param, "messages", "`messages` must not be empty");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Json& m = msgs[i];
    std::string f = "messages." + std::to_string(i);
    if (!m.is_object()) return Fail(param, f, "`" + f + "` must be an object");
    const Json* role = Get(m, "role");
    if (!role || !role->is_string()) {
      return Fail(param, f + ".role", "`" + f + ".role` must be a string");
    }
    bool known = false;
    for (const char* r : kRoles) known = known || *role == r;
    if (!known) {
      return Fail(param, f + ".role",
                  "`" + f + ".role` has unknown role \"" + role->get<std::string>() + "\"");
    }
    auto c = m.find("content");
    if (c != m.end() && !c->is_null() && !c->is_string()) {
      if (!c->is_array()) {
        return Fail(param, f + ".content",
                    "`" + f + ".content` must be a string or a list of content parts");
      }
      for (size_t k = 0; k < c->size(); ++k) {
        const Json& part = (*c)[k];
        std::string pf = f + ".content." + std::to_string(k);
        if (!part.is_object()) return Fail(param, pf, "`" + pf + "` must be an object");
        const Json* type = Get(part, "type");
        if (!type || !type->is_string()) {
          return Fail(param, pf + ".type", "`" + pf + ".type` must be a string");
        }
        if (*type != "text") {
          return Fail(param, pf + ".type",
                      "content part type \"" + type->get<std::string>() +
                          "\" is not supported (text only)");
        }
        const Json* text = Get(part, "text");
        if (!text || !text->is_string()) {
          return Fail(param, pf + ".text", "`" + pf + ".text` must be a string");
        }
      }
    }
    if (const Json* tc = Get(m, "tool_calls"); tc && !tc->is_array()) {
      return Fail(param, f + ".tool_calls", "`" + f + ".tool_calls` must be a list");
    }
  }
  return OkStatus();
}

Result<Json> ChatTemplateKwargs(const Json& b, std::string* param) {
  const Json* k = Get(b, "chat_template_kwargs");
  if (!k) return Json::object();
  if (!k->is_object()) {
    return Fail(param, "chat_template_kwargs", "`chat_template_kwargs` must be an object");
  }
  return *k;
}

Result<std::string> ModelField(const Json& b, std::string* param) {
  PETREL_TRY(auto model, GetString(b, "model", param));
  return model ? *model : std::string();
}

}  // namespace

Result<Json> ParseBody(std::string_view body) {
  auto j = ParseJson(body, "request body");
  if (!j.ok()) return InvalidArgument(j.error().message);
  if (!j->is_object()) return InvalidArgument("request body must be a JSON object");
  return std::move(j).value();
}

Result<ChatCompletionRequest> ParseChatCompletionRequest(const Json& b, std::string* param) {
  ChatCompletionRequest r;
  PETREL_TRY(r.model, ModelField(b, param));
  const Json* msgs = Get(b, "messages");
  if (!msgs) return Fail(param, "messages", "`messages` is required");
  PETREL_TRY(ValidateMessages(*msgs, param));
  r.messages = *msgs;
  if (const Json* tools = Get(b, "tools")) {
    if (!tools->is_array()) return Fail(param, "tools", "`tools` must be a list");
    for (size_t i = 0; i < tools->size(); ++i) {
      const Json& t = (*tools)[i];
      std::string f = "tools." + std::to_string(i);
      const Json* fn = t.is_object() ? Get(t, "function") : nullptr;
      const Json* name = fn && fn->is_object() ? Get(*fn, "name") : nullptr;
      if (!name || !name->is_string()) {
        return Fail(param, f,
                    "`" + f + "` must be {\"type\":\"function\",\"function\":{\"name\",...}}");
      }
    }
    r.tools = *tools;
  }
  if (const Json* tc = Get(b, "tool_choice")) {
    bool ok = (tc->is_string() && (*tc == "none" || *tc == "auto" || *tc == "required")) ||
              tc->is_object();
    if (!ok) {
      return Fail(param, "tool_choice",
                  "`tool_choice` must be \"none\", \"auto\", \"required\" or an object");
    }
    r.tool_choice = *tc;
  }
  PETREL_TRY(r.chat_template_kwargs, ChatTemplateKwargs(b, param));
  PETREL_TRY(auto agp, GetBool(b, "add_generation_prompt", param));
  if (agp) r.add_generation_prompt = *agp;
  PETREL_TRY(auto cont, GetBool(b, "continue_final_message", param));
  if (cont) r.continue_final_message = *cont;
  if (r.continue_final_message) r.add_generation_prompt = false;
  PETREL_TRY(ParseGeneration(b, /*chat=*/true, &r.gen, param));
  return r;
}

Result<CompletionRequest> ParseCompletionRequest(const Json& b, std::string* param) {
  CompletionRequest r;
  PETREL_TRY(r.model, ModelField(b, param));
  const Json* p = Get(b, "prompt");
  if (!p) return Fail(param, "prompt", "`prompt` is required");
  // Accepted shapes: "text", ["text", ...], [id, ...], [[id, ...], ...].
  const char* kShape =
      "`prompt` must be a string, a list of strings, a list of token ids or a list of lists of "
      "token ids";
  if (p->is_string()) {
    r.text_prompts.push_back(p->get<std::string>());
  } else if (p->is_array()) {
    if (p->empty()) return Fail(param, "prompt", "`prompt` must not be empty");
    const Json& first = (*p)[0];
    if (first.is_string()) {
      for (const auto& e : *p) {
        if (!e.is_string()) return Fail(param, "prompt", kShape);
        r.text_prompts.push_back(e.get<std::string>());
      }
    } else if (first.is_number()) {
      PETREL_TRY(auto ids, TokenIdList(*p, "prompt", param));
      r.token_prompts.push_back(std::move(ids));
    } else if (first.is_array()) {
      for (size_t i = 0; i < p->size(); ++i) {
        const Json& e = (*p)[i];
        if (!e.is_array() || e.empty()) return Fail(param, "prompt", kShape);
        PETREL_TRY(auto ids, TokenIdList(e, "prompt." + std::to_string(i), param));
        r.token_prompts.push_back(std::move(ids));
      }
    } else {
      return Fail(param, "prompt", kShape);
    }
  } else {
    return Fail(param, "prompt", kShape);
  }
  if (r.text_prompts.size() + r.token_prompts.size() > size_t(kMaxN)) {
    return Fail(param, "prompt", "too many prompts in one request");
  }
  PETREL_TRY(auto echo, GetBool(b, "echo", param));
  if (echo) r.echo = *echo;
  if (const Json* suffix = Get(b, "suffix")) {
    (void)suffix;
    return Fail(param, "suffix", "`suffix` is not supported");
  }
  PETREL_TRY(ParseGeneration(b, /*chat=*/false, &r.gen, param));
  if (r.gen.n * (r.text_prompts.size() + r.token_prompts.size()) > size_t(kMaxN)) {
    return Fail(param, "n", "too many choices (prompts x n) in one request");
  }
  return r;
}

Result<TokenizeRequest> ParseTokenizeRequest(const Json& b, std::string* param) {
  TokenizeRequest r;
  PETREL_TRY(r.model, ModelField(b, param));
  PETREL_TRY(r.prompt, GetString(b, "prompt", param));
  if (const Json* msgs = Get(b, "messages")) {
    if (r.prompt) return Fail(param, "messages", "give either `prompt` or `messages`, not both");
    PETREL_TRY(ValidateMessages(*msgs, param));
    r.messages = *msgs;
  } else if (!r.prompt) {
    return Fail(param, "prompt", "`prompt` (or `messages`) is required");
  }
  PETREL_TRY(auto special, GetBool(b, "add_special_tokens", param));
  // vLLM: chat tokenization defaults add_special_tokens to false (the template adds them).
  r.add_special_tokens = special ? *special : !r.messages.is_array();
  PETREL_TRY(auto agp, GetBool(b, "add_generation_prompt", param));
  if (agp) r.add_generation_prompt = *agp;
  PETREL_TRY(r.chat_template_kwargs, ChatTemplateKwargs(b, param));
  PETREL_TRY(auto strs, GetBool(b, "return_token_strs", param));
  if (strs) r.return_token_strs = *strs;
  return r;
}

Result<DetokenizeRequest> ParseDetokenizeRequest(const Json& b, std::string* param) {
  DetokenizeRequest r;
  PETREL_TRY(r.model, ModelField(b, param));
  const Json* t = Get(b, "tokens");
  if (!t) return Fail(param, "tokens", "`tokens` is required");
  if (!t->is_array()) return Fail(param, "tokens", "`tokens` must be a list of token ids");
  PETREL_TRY(r.tokens, TokenIdList(*t, "tokens", param));
  return r;
}

Result<SimpleGenerateRequest> ParseSimpleGenerateRequest(const Json& b, std::string* param) {
  SimpleGenerateRequest r;
  PETREL_TRY(auto prompt, GetString(b, "prompt", param));
  if (!prompt) return Fail(param, "prompt", "`prompt` is required");
  r.prompt = *prompt;
  PETREL_TRY(auto max_tokens,
             GetInt(b, "max_tokens", 1, std::numeric_limits<int32_t>::max(), param));
  if (max_tokens) r.max_tokens = int(*max_tokens);
  return r;
}

Json UsageJson(const Usage& u) {
  return Json{{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

namespace {
Json Bytes(const std::string& s) {
  Json arr = Json::array();
  for (unsigned char c : s) arr.push_back(int(c));
  return arr;
}
// JSON has no -Infinity; a token with probability 0 gets the most negative float, as vLLM does.
double SafeLogprob(float lp) { return std::isfinite(lp) ? double(lp) : -9999.0; }
}  // namespace

Json ChatLogprobsJson(const std::vector<TokenLogprob>& entries) {
  Json content = Json::array();
  for (const auto& e : entries) {
    Json top = Json::array();
    for (const auto& a : e.top) {
      top.push_back(
          {{"token", a.token}, {"logprob", SafeLogprob(a.logprob)}, {"bytes", Bytes(a.token)}});
    }
    content.push_back({{"token", e.token},
                       {"logprob", SafeLogprob(e.logprob)},
                       {"bytes", Bytes(e.token)},
                       {"top_logprobs", top}});
  }
  return Json{{"content", content}};
}

Json CompletionLogprobsJson(const std::vector<TokenLogprob>& entries, size_t offset0) {
  Json tokens = Json::array(), lps = Json::array(), tops = Json::array(), offs = Json::array();
  size_t off = offset0;
  for (const auto& e : entries) {
    tokens.push_back(e.token);
    lps.push_back(SafeLogprob(e.logprob));
    Json top = Json::object();
    for (const auto& a : e.top) top[a.token] = SafeLogprob(a.logprob);
    tops.push_back(top);
    offs.push_back(off);
    off += e.token.size();
  }
  return Json{
      {"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

Json ToolCallJson(const std::string& id, const std::string& name, const std::string& arguments) {
  return Json{
      {"id", id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", arguments}}}};
}

}  // namespace petrel::server
