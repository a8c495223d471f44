#include "server/routes.h"

#include <chrono>
#include <cstdio>
#include <random>

#include "core/log.h"
#include "server/error_map.h"
#include "server/openai_protocol.h"
#include "server/sse.h"
#include "server/stop_matcher.h"

namespace petrel::server {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = DumpJson(body);
  return r;
}

void SendError(Exchange& ex, const ApiError& e) {
  HttpResponse r;
  r.status = e.status;
  r.body = ErrorBody(e);
  ex.Respond(std::move(r));
}

const char* ReasonName(runtime::FinishReason r) {
  switch (r) {
    case runtime::FinishReason::kNone:
      return "stop";
    case runtime::FinishReason::kStop:
      return "stop";
    case runtime::FinishReason::kLength:
      return "length";
    case runtime::FinishReason::kAbort:
      return "abort";
    case runtime::FinishReason::kError:
      return "error";
  }
  return "stop";
}

enum class Kind { kChat, kCompletion, kSimple };

}  // namespace

// One HTTP request: its choices (one engine request each) and everything needed to turn token
// updates into the answer. Lives on the request's HTTP thread only.
struct Api::Call : std::enable_shared_from_this<Api::Call> {
  struct Choice {
    int index = 0;
    int prompt_index = 0;
    uint64_t engine_id = 0;
    bool submitted = false;
    bool finished = false;
    std::unique_ptr<TextStream> detok;
    std::unique_ptr<StopMatcher> stop;
    std::unique_ptr<ChatParser> parser;  // chat only
    std::string text;                    // content so far (whole answers), incl. echo
    std::string reasoning;               // chat
    std::vector<ToolCall> tool_calls;
    std::vector<TokenLogprob> logprobs_pending;  // not yet sent (streaming)
    std::vector<TokenLogprob> logprobs_all;      // whole answers
    size_t text_offset = 0;  // completions logprobs: bytes of text before the pending entries
    int completion_tokens = 0;
    std::string finish_reason;
    Clock::time_point last_token;
  };

  Api* api = nullptr;
  Kind kind = Kind::kChat;
  std::shared_ptr<Exchange> ex;
  std::string id;
  GenerationOptions gen;
  bool echo = false;
  std::vector<std::string> echo_text;  // per prompt
  std::vector<int> prompt_tokens;      // per prompt
  std::vector<int> cached_tokens;      // per prompt
  std::vector<Choice> choices;
  int open = 0;
  Clock::time_point start = Clock::now();
  bool first_token = false;
  std::optional<ApiError> error;  // an engine error ended the request
  bool done = false;
  // Chat.
  std::string chat_prompt;
  bool parse_tools = false;
  // Seed API.
  std::string simple_prompt;
  std::string adapter;  // LoRA adapter name, "" = base model

  runtime::Engine& engine() { return *api->engine_; }
  const TextCodec& codec() { return *api->codec_; }

  Json ChunkBase() const {
    return Json{{"id", id},
                {"object", kind == Kind::kChat ? "chat.completion.chunk" : "text_completion"},
                {"created", api->created_},
                {"model", adapter.empty() ? api->opts_.served_model_name : adapter}};
  }

  void SendChunk(Json choice) {
    Json chunk = ChunkBase();
    chunk["choices"] = Json::array({std::move(choice)});
    if (gen.include_usage) chunk["usage"] = nullptr;
    ex->Write(SseEvent(DumpJson(chunk)));
  }

  Json PendingLogprobs(Choice& c) {
    if (!gen.logprobs) return nullptr;
    Json j = kind == Kind::kChat ? ChatLogprobsJson(c.logprobs_pending)
                                 : CompletionLogprobsJson(c.logprobs_pending, c.text_offset);
    for (const auto& e : c.logprobs_pending) c.text_offset += e.token.size();
    c.logprobs_pending.clear();
    return j;
  }

  // Routes newly final text of choice `c` to the client (stream) or its buffers.
  void Emit(Choice& c, const std::string& text, bool final) {
    std::string reasoning, content;
    if (kind == Kind::kChat) {
      auto d = c.parser->Feed(text);
      if (final) {
        auto f = c.parser->Finish();
        d.reasoning += f.reasoning;
        d.content += f.content;
      }
      reasoning = std::move(d.reasoning);
      content = std::move(d.content);
    } else {
      content = text;
    }
    if (!gen.stream) {
      c.reasoning += reasoning;
      c.text += content;
      return;
    }
    if (reasoning.empty() && content.empty()) return;
    if (kind == Kind::kChat) {
      Json delta = Json::object();
      if (!reasoning.empty()) delta["reasoning_content"] = reasoning;
      if (!content.empty()) delta["content"] = content;
      SendChunk({{"index", c.index},
                 {"delta", delta},
                 {"logprobs", PendingLogprobs(c)},
                 {"finish_reason", nullptr}});
    } else {
      SendChunk({{"index", c.index},
                 {"text", content},
                 {"logprobs", PendingLogprobs(c)},
                 {"finish_reason", nullptr}});
    }
  }

  void Start() {
    if (gen.stream) {
      ex->BeginStream(200, "text/event-stream");
      for (auto& c : choices) {
        if (kind == Kind::kChat) {
          SendChunk({{"index", c.index},
                     {"delta", {{"role", "assistant"}, {"content", ""}}},
                     {"logprobs", nullptr},
                     {"finish_reason", nullptr}});
        } else if (echo && !echo_text[c.prompt_index].empty()) {
          SendChunk({{"index", c.index},
                     {"text", echo_text[c.prompt_index]},
                     {"logprobs", nullptr},
                     {"finish_reason", nullptr}});
          c.text_offset = echo_text[c.prompt_index].size();
        }
      }
    } else if (echo) {
      for (auto& c : choices) {
        c.text = echo_text[c.prompt_index];
        c.text_offset = c.text.size();
      }
    }
  }

  void OnUpdate(size_t i, runtime::RequestUpdate u) {
    Choice& c = choices[i];
    if (c.finished) return;
    if (u.prompt_tokens > 0) {
      cached_tokens[c.prompt_index] =
          std::max(cached_tokens[c.prompt_index], u.cached_prompt_tokens);
    }
    const auto now = Clock::now();
    bool stopped = false;
    for (const auto& tok : u.tokens) {
      c.completion_tokens++;
      if (!first_token) {
        first_token = true;
        api->metrics_->ObserveTtft(Seconds(now - start));
      } else if (c.completion_tokens > 1) {
        api->metrics_->ObserveInterToken(Seconds(now - c.last_token));
      }
      c.last_token = now;
      if (gen.logprobs) {
        TokenLogprob e;
        e.token = codec().TokenText(tok.token);
        e.logprob = tok.logprob;
        for (const auto& t : tok.top) e.top.push_back({codec().TokenText(t.token), t.logprob});
        c.logprobs_pending.push_back(e);
        if (!gen.stream) c.logprobs_all.push_back(std::move(e));
      }
      auto out = c.stop->Feed(c.detok->Add(tok.token));
      Emit(c, out.text, false);
      if (out.stopped) {
        stopped = true;
        break;
      }
    }
    if (stopped) {
      // Our stop string, not the engine's: cancel the rest of the generation.
      engine().Abort(c.engine_id);
      c.finish_reason = "stop";
      FinishChoice(c);
      return;
    }
    if (!u.finished) return;
    if (u.reason == runtime::FinishReason::kError) {
      if (!error) {
        error = ApiError{.status = 500,
                         .type = "internal_error",
                         .message = "generation failed: " + u.error,
                         .param = "",
                         .code = ""};
      }
    }
    auto out = c.stop->Feed(c.detok->Finish());
    std::string tail = out.text;
    if (!out.stopped) tail += c.stop->Flush();
    c.finish_reason = out.stopped ? "stop" : ReasonName(u.reason);
    Emit(c, tail, true);
    FinishChoice(c);
  }

  void FinishChoice(Choice& c) {
    c.finished = true;
    open--;
    if (kind == Kind::kChat && !c.parser->tool_calls().empty()) {
      c.tool_calls = c.parser->tool_calls();
      for (auto& t : c.tool_calls) {
        if (t.id.empty()) t.id = api->NewId("call_");
      }
      if (c.finish_reason == "stop") c.finish_reason = "tool_calls";
    }
    api->metrics_->CountRequest(c.finish_reason);
    if (gen.stream) {
      Json last = {
          {"index", c.index}, {"logprobs", PendingLogprobs(c)}, {"finish_reason", c.finish_reason}};
      if (kind == Kind::kChat) {
        Json delta = Json::object();
        if (!c.tool_calls.empty()) {
          Json tc = Json::array();
          for (size_t k = 0; k < c.tool_calls.size(); ++k) {
            Json t =
                ToolCallJson(c.tool_calls[k].id, c.tool_calls[k].name, c.tool_calls[k].arguments);
            t["index"] = k;
            tc.push_back(std::move(t));
          }
          delta["tool_calls"] = tc;
        }
        last["delta"] = delta;
      } else {
        last["text"] = "";
      }
      SendChunk(std::move(last));
    }
    if (open == 0) Complete();
  }

  Usage TotalUsage() const {
    Usage u;
    for (size_t p = 0; p < prompt_tokens.size(); ++p) {
      u.prompt_tokens += prompt_tokens[p];
      u.cached_tokens += cached_tokens[p];
    }
    for (const auto& c : choices) u.completion_tokens += c.completion_tokens;
    return u;
  }

  void Complete() {
    if (done) return;
    done = true;
    api->metrics_->ObserveE2e(Seconds(Clock::now() - start));
    if (gen.stream) {
      if (error) ex->Write(SseEvent(ErrorBody(*error)));
      if (gen.include_usage && !error) {
        Json chunk = ChunkBase();
        chunk["choices"] = Json::array();
        chunk["usage"] = UsageJson(TotalUsage());
        ex->Write(SseEvent(DumpJson(chunk)));
      }
      ex->Write(SseDone());
      ex->End();
      return;
    }
    if (error) {
      SendError(*ex, *error);
      return;
    }
    if (kind == Kind::kSimple) {
      ex->Respond(JsonResponse(200, {{"prompt", simple_prompt}, {"response", choices[0].text}}));
      return;
    }
    Json out_choices = Json::array();
    for (auto& c : choices) {
      Json ch = {{"index", c.index}, {"finish_reason", c.finish_reason}};
      if (kind == Kind::kChat) {
        Json msg = {{"role", "assistant"}};
        msg["content"] = c.text.empty() && !c.tool_calls.empty() ? Json(nullptr) : Json(c.text);
        if (!c.reasoning.empty()) msg["reasoning_content"] = c.reasoning;
        if (!c.tool_calls.empty()) {
          Json tc = Json::array();
          for (const auto& t : c.tool_calls) tc.push_back(ToolCallJson(t.id, t.name, t.arguments));
          msg["tool_calls"] = tc;
        }
        ch["message"] = msg;
        ch["logprobs"] = gen.logprobs ? ChatLogprobsJson(c.logprobs_all) : Json(nullptr);
      } else {
        ch["text"] = c.text;
        size_t off0 = echo ? echo_text[c.prompt_index].size() : 0;
        ch["logprobs"] =
            gen.logprobs ? CompletionLogprobsJson(c.logprobs_all, off0) : Json(nullptr);
      }
      out_choices.push_back(std::move(ch));
    }
    Json body = {{"id", id},
                 {"object", kind == Kind::kChat ? "chat.completion" : "text_completion"},
                 {"created", api->created_},
                 {"model", adapter.empty() ? api->opts_.served_model_name : adapter},
                 {"choices", out_choices},
                 {"usage", UsageJson(TotalUsage())}};
    ex->Respond(JsonResponse(200, body));
  }

  void Cancel() {
    for (auto& c : choices) {
      if (c.submitted && !c.finished) engine().Abort(c.engine_id);
    }
    api->metrics_->CountDisconnect();
  }
};

Api::Api(ApiOptions options, Metrics* metrics) : opts_(std::move(options)), metrics_(metrics) {
  std::random_device rd;
  id_salt_ = (uint64_t(rd()) << 32) ^ rd();
  created_ = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
}

std::string Api::NewId(const char* prefix) {
  // A splitmix64 step over a counter: unique per process, not guessable across restarts.
  uint64_t z = id_salt_ + 0x9e3779b97f4a7c15ull * (++id_counter_);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)z);
  return std::string(prefix) + buf;
}

void Api::SetBackend(runtime::Engine* engine, const TextCodec* codec) {
  engine_ = engine;
  codec_ = codec;
  ready_.store(true, std::memory_order_release);
}

void Api::Handle(HttpRequest req, std::shared_ptr<Exchange> ex) {
  const std::string& p = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool post = req.method == "POST";
  struct Route {
    const char* path;
    bool is_post;
  };
  static constexpr Route kRoutes[] = {
      {"/v1/chat/completions", true},
      {"/v1/completions", true},
      {"/tokenize", true},
      {"/detokenize", true},
      {"/generate", true},
      {"/v1/models", false},
      {"/health", false},
      {"/metrics", false},
      {"/v1/load_lora_adapter", true},
      {"/v1/unload_lora_adapter", true},
  };
  const Route* route = nullptr;
  for (const auto& r : kRoutes) {
    if (p == r.path) route = &r;
  }
  if (!route) return SendError(*ex, NotFoundRoute(req.method, p));
  if (route->is_post ? !post : !get) return SendError(*ex, MethodNotAllowed(req.method, p));

  if (p == "/health") {
    if (!ready()) return SendError(*ex, ServiceUnavailable("model is loading"));
    return ex->Respond(JsonResponse(200, {{"status", "ok"}}));
  }
  if (!ready()) return SendError(*ex, ServiceUnavailable("model is loading"));
  if (p == "/v1/models") return Models(ex);
  if (p == "/metrics") return MetricsText(ex);
  if (p == "/v1/chat/completions") return Chat(req, ex);
  if (p == "/v1/completions") return Completion(req, ex, false);
  if (p == "/generate") return Completion(req, ex, true);
  if (p == "/tokenize") return Tokenize(req, ex);
  if (p == "/detokenize") return Detokenize(req, ex);
  if (p == "/v1/load_lora_adapter") return LoraAdmin(req, ex, true);
  if (p == "/v1/unload_lora_adapter") return LoraAdmin(req, ex, false);
}

bool Api::ResolveModel(const std::string& model, std::string* adapter) const {
  adapter->clear();
  if (model.empty() || model == opts_.served_model_name) return true;
  for (const auto& a : engine_->ListAdapters()) {
    if (a.name == model) {
      *adapter = model;
      return true;
    }
  }
  return false;
}

void Api::LoraAdmin(const HttpRequest& req, std::shared_ptr<Exchange> ex, bool load) {
  if (!opts_.allow_runtime_lora) {
    return SendError(*ex, ApiError{.status = 403,
                                   .type = "invalid_request_error",
                                   .message = "runtime LoRA loading is off (start the server "
                                              "with --enable-lora-loading)",
                                   .param = "",
                                   .code = "forbidden"});
  }
  auto body = ParseBody(req.body);
  if (!body.ok()) return SendError(*ex, BadRequest(body.error().message));
  auto field = [&](const char* key) -> const Json* {
    auto it = body->find(key);
    return it != body->end() && it->is_string() && !it->get<std::string>().empty() ? &*it : nullptr;
  };
  const Json* name = field("lora_name");
  if (!name)
    return SendError(*ex, BadRequest("`lora_name` must be a non-empty string", "lora_name"));
  if (name->get<std::string>() == opts_.served_model_name) {
    return SendError(*ex,
                     BadRequest("`lora_name` must differ from the served model name", "lora_name"));
  }
  Status st;
  if (load) {
    const Json* path = field("lora_path");
    if (!path) {
      return SendError(*ex, BadRequest("`lora_path` must be a non-empty string", "lora_path"));
    }
    bool replace = false;
    if (auto it = body->find("load_inplace"); it != body->end() && !it->is_null()) {
      if (!it->is_boolean()) {
        return SendError(*ex, BadRequest("`load_inplace` must be a boolean", "load_inplace"));
      }
      replace = it->get<bool>();
    }
    st = engine_->LoadAdapter(*name, *path, replace);
  } else {
    st = engine_->UnloadAdapter(*name);
  }
  if (!st.ok()) return SendError(*ex, ToApiError(st.error(), "lora_name"));
  HttpResponse r;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::string("Success: LoRA adapter '") + name->get<std::string>() +
           (load ? "' added successfully." : "' removed successfully.");
  ex->Respond(std::move(r));
}

void Api::Models(std::shared_ptr<Exchange> ex) {
  Json m = {{"id", opts_.served_model_name},
            {"object", "model"},
            {"created", created_},
            {"owned_by", "petrel"},
            {"root", opts_.model_root},
            {"parent", nullptr},
            {"max_model_len", engine_->model_info().max_model_len}};
  Json data = Json::array({m});
  for (const auto& a : engine_->ListAdapters()) {
    data.push_back({{"id", a.name},
                    {"object", "model"},
                    {"created", created_},
                    {"owned_by", "petrel"},
                    {"root", a.path},
                    {"parent", opts_.served_model_name},
                    {"max_model_len", engine_->model_info().max_model_len}});
  }
  ex->Respond(JsonResponse(200, {{"object", "list"}, {"data", data}}));
}

void Api::MetricsText(std::shared_ptr<Exchange> ex) {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_->Render(engine_->Stats(), opts_.served_model_name);
  ex->Respond(std::move(r));
}

namespace {

// Parses the body and checks `model`; on failure answers and returns nullopt.
template <typename T, typename ParseFn, typename ResolveFn>
std::optional<T> ParseRequest(const HttpRequest& req, Exchange& ex, ParseFn parse,
                              ResolveFn resolve) {
  auto body = ParseBody(req.body);
  if (!body.ok()) {
    SendError(ex, BadRequest(body.error().message));
    return std::nullopt;
  }
  std::string param;
  auto r = parse(*body, &param);
  if (!r.ok()) {
    SendError(ex, BadRequest(r.error().message, param));
    return std::nullopt;
  }
  if (!resolve(r->model)) {
    SendError(ex, ModelNotFound(r->model));
    return std::nullopt;
  }
  return std::move(r).value();
}

// Token ids the client gave must be in the vocabulary.
std::optional<ApiError> CheckIds(const GenerationOptions& g, int vocab) {
  for (auto [id, bias] : g.sampling.logit_bias) {
    if (id >= vocab) {
      return BadRequest("logit_bias token id " + std::to_string(id) + " is outside the vocabulary",
                        "logit_bias");
    }
  }
  for (int32_t id : g.stop_token_ids) {
    if (id >= vocab) {
      return BadRequest("stop token id " + std::to_string(id) + " is outside the vocabulary",
                        "stop_token_ids");
    }
  }
  return std::nullopt;
}

}  // namespace

// Submits one engine request per choice and starts the answer. `prompts` are token ids per
// prompt; `prompt_param` names the field blamed for a too-long prompt.
static void SubmitCall(runtime::Engine& engine, std::shared_ptr<Api::Call> call,
                       const std::vector<std::vector<int32_t>>& prompts,
                       const std::string& prompt_param);

void Api::Chat(const HttpRequest& req, std::shared_ptr<Exchange> ex) {
  std::string adapter;
  auto r = ParseRequest<ChatCompletionRequest>(
      req, *ex, ParseChatCompletionRequest,
      [&](const std::string& m) { return ResolveModel(m, &adapter); });
  if (!r) return;
  if (auto e = CheckIds(r->gen, codec_->vocab_size())) return SendError(*ex, *e);
  // Validation used the sorted-key Json; the template gets the client's key order.
  auto ordered = ParseOrderedJson(req.body, "request body");
  if (!ordered.ok()) return SendError(*ex, BadRequest(ordered.error().message));
  const OrderedJson tools = r->tools.is_array() ? (*ordered)["tools"] : OrderedJson(nullptr);
  auto prompt = codec_->ApplyChatTemplate((*ordered)["messages"], tools, r->add_generation_prompt,
                                          r->chat_template_kwargs);
  if (!prompt.ok()) {
    return SendError(*ex, BadRequest("chat template: " + prompt.error().message, "messages"));
  }
  // The template already wrote the special tokens.
  auto ids = codec_->Encode(*prompt, /*add_special_tokens=*/false);
  if (!ids.ok()) return SendError(*ex, ToApiError(ids.error(), "messages"));

  auto call = std::make_shared<Call>();
  call->api = this;
  call->kind = Kind::kChat;
  call->ex = ex;
  call->id = NewId("chatcmpl-");
  call->adapter = adapter;
  call->gen = std::move(r->gen);
  call->chat_prompt = *prompt;
  const bool tool_choice_none = r->tool_choice.is_string() && r->tool_choice == "none";
  call->parse_tools = r->tools.is_array() && !r->tools.empty() && !tool_choice_none;
  SubmitCall(*engine_, call, {std::move(ids).value()}, "messages");
}

void Api::Completion(const HttpRequest& req, std::shared_ptr<Exchange> ex, bool simple) {
  auto call = std::make_shared<Call>();
  call->api = this;
  call->ex = ex;
  std::vector<std::vector<int32_t>> prompts;
  if (simple) {
    // The seed API: {"prompt","max_tokens"} -> {"prompt","response"}; model defaults otherwise.
    auto body = ParseBody(req.body);
    if (!body.ok()) return SendError(*ex, BadRequest(body.error().message));
    std::string param;
    auto r = ParseSimpleGenerateRequest(*body, &param);
    if (!r.ok()) return SendError(*ex, BadRequest(r.error().message, param));
    auto ids = codec_->Encode(r->prompt, /*add_special_tokens=*/true);
    if (!ids.ok()) return SendError(*ex, ToApiError(ids.error(), "prompt"));
    call->kind = Kind::kSimple;
    call->simple_prompt = r->prompt;
    call->gen.max_tokens = r->max_tokens;
    prompts.push_back(std::move(ids).value());
  } else {
    auto r = ParseRequest<CompletionRequest>(
        req, *ex, ParseCompletionRequest,
        [&](const std::string& m) { return ResolveModel(m, &call->adapter); });
    if (!r) return;
    if (auto e = CheckIds(r->gen, codec_->vocab_size())) return SendError(*ex, *e);
    call->kind = Kind::kCompletion;
    call->gen = std::move(r->gen);
    call->echo = r->echo;
    for (const auto& text : r->text_prompts) {
      auto ids = codec_->Encode(text, /*add_special_tokens=*/true);
      if (!ids.ok()) return SendError(*ex, ToApiError(ids.error(), "prompt"));
      prompts.push_back(std::move(ids).value());
      call->echo_text.push_back(text);
    }
    for (auto& ids : r->token_prompts) {
      for (int32_t id : ids) {
        if (id >= codec_->vocab_size()) {
          return SendError(*ex, BadRequest("prompt token id " + std::to_string(id) +
                                               " is outside the vocabulary",
                                           "prompt"));
        }
      }
      if (call->echo) {
        auto text = codec_->Decode(ids, /*skip_special_tokens=*/false);
        if (!text.ok()) return SendError(*ex, ToApiError(text.error(), "prompt"));
        call->echo_text.push_back(std::move(text).value());
      } else {
        call->echo_text.emplace_back();
      }
      prompts.push_back(std::move(ids));
    }
  }
  call->id = NewId(simple ? "gen-" : "cmpl-");
  SubmitCall(*engine_, call, prompts, "prompt");
}

static void SubmitCall(runtime::Engine& engine, std::shared_ptr<Api::Call> call,
                       const std::vector<std::vector<int32_t>>& prompts,
                       const std::string& prompt_param) {
  const auto& info = engine.model_info();
  const auto& defaults = info.default_sampling;
  GenerationOptions& g = call->gen;
  // Fields the client left out take the model's generation_config.json defaults.
  if (!g.has_temperature) g.sampling.temperature = defaults.temperature;
  if (!g.has_top_p) g.sampling.top_p = defaults.top_p;
  if (!g.has_top_k) g.sampling.top_k = defaults.top_k;
  if (!g.has_min_p) g.sampling.min_p = defaults.min_p;
  if (!g.has_repetition_penalty) g.sampling.repetition_penalty = defaults.repetition_penalty;

  const int n = g.n;
  call->prompt_tokens.assign(prompts.size(), 0);
  call->cached_tokens.assign(prompts.size(), 0);
  call->choices.resize(prompts.size() * n);
  for (size_t p = 0; p < prompts.size(); ++p) {
    call->prompt_tokens[p] = int(prompts[p].size());
    for (int k = 0; k < n; ++k) {
      auto& c = call->choices[p * n + k];
      c.index = int(p * n + k);
      c.prompt_index = int(p);
      c.detok = call->codec().NewStream(g.skip_special_tokens);
      c.stop = std::make_unique<StopMatcher>(g.stop);
      if (call->kind == Kind::kChat) {
        c.parser = call->codec().NewChatParser(call->chat_prompt, call->parse_tools);
      }
    }
  }
  call->open = int(call->choices.size());

  std::weak_ptr<Api::Call> weak = call;
  call->ex->OnCancel([weak] {
    if (auto c = weak.lock()) c->Cancel();
  });

  for (size_t i = 0; i < call->choices.size(); ++i) {
    auto& c = call->choices[i];
    const auto& prompt = prompts[c.prompt_index];
    runtime::GenerateRequest req;
    req.prompt = prompt;
    req.sampling = g.sampling;
    // Each choice gets its own (reproducible) random stream.
    if (g.sampling.seed) req.sampling.seed = *g.sampling.seed + uint64_t(c.index);
    req.max_new_tokens =
        g.max_tokens.value_or(std::max(1, info.max_model_len - int(prompt.size())));
    req.stop_token_ids = g.stop_token_ids;
    req.eos_token_ids = info.eos_token_ids;
    req.ignore_eos = g.ignore_eos;
    req.top_logprobs = g.logprobs ? g.top_logprobs : -1;
    req.adapter = call->adapter;
    auto id = engine.Submit(std::move(req), [call, i](runtime::RequestUpdate u) {
      // Engine thread: hand over to the request's HTTP thread and return at once.
      call->ex->Post([call, i, u = std::move(u)]() mutable { call->OnUpdate(i, std::move(u)); });
    });
    if (!id.ok()) {
      // Undo the choices already queued; nothing was sent yet.
      for (size_t j = 0; j < i; ++j) engine.Abort(call->choices[j].engine_id);
      call->done = true;
      std::string param = id.error().code == ErrorCode::kOutOfRange ? prompt_param : "";
      return SendError(*call->ex, ToApiError(id.error(), param));
    }
    c.engine_id = *id;
    c.submitted = true;
  }
  call->Start();
}

void Api::Tokenize(const HttpRequest& req, std::shared_ptr<Exchange> ex) {
  std::string adapter;  // adapters share the base tokenizer
  auto r = ParseRequest<TokenizeRequest>(req, *ex, ParseTokenizeRequest, [&](const std::string& m) {
    return ResolveModel(m, &adapter);
  });
  if (!r) return;
  std::string text;
  if (r->prompt) {
    text = *r->prompt;
  } else {
    auto ordered = ParseOrderedJson(req.body, "request body");
    if (!ordered.ok()) return SendError(*ex, BadRequest(ordered.error().message));
    auto rendered = codec_->ApplyChatTemplate((*ordered)["messages"], OrderedJson(nullptr),
                                              r->add_generation_prompt, r->chat_template_kwargs);
    if (!rendered.ok()) {
      return SendError(*ex, BadRequest("chat template: " + rendered.error().message, "messages"));
    }
    text = std::move(rendered).value();
  }
  auto ids = codec_->Encode(text, r->add_special_tokens);
  if (!ids.ok()) return SendError(*ex, ToApiError(ids.error(), "prompt"));
  Json out = {{"count", ids->size()},
              {"max_model_len", engine_->model_info().max_model_len},
              {"tokens", *ids}};
  if (r->return_token_strs) {
    Json strs = Json::array();
    for (int32_t id : *ids) strs.push_back(codec_->TokenText(id));
    out["token_strs"] = strs;
  } else {
    out["token_strs"] = nullptr;
  }
  ex->Respond(JsonResponse(200, out));
}

void Api::Detokenize(const HttpRequest& req, std::shared_ptr<Exchange> ex) {
  std::string adapter;
  auto r = ParseRequest<DetokenizeRequest>(
      req, *ex, ParseDetokenizeRequest,
      [&](const std::string& m) { return ResolveModel(m, &adapter); });
  if (!r) return;
  for (int32_t id : r->tokens) {
    if (id >= codec_->vocab_size()) {
      return SendError(
          *ex,
          BadRequest("token id " + std::to_string(id) + " is outside the vocabulary", "tokens"));
    }
  }
  auto text = codec_->Decode(r->tokens, /*skip_special_tokens=*/false);
  if (!text.ok()) return SendError(*ex, ToApiError(text.error(), "tokens"));
  ex->Respond(JsonResponse(200, {{"prompt", *text}}));
}

}  // namespace petrel::server
