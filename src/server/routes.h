// The OpenAI-compatible API on top of the engine: routing, request validation, prompt building
// (chat template + tokenizer), submitting one engine request per choice, and turning the engine's
// token updates into text (incremental detokenization, stop strings, reasoning / tool-call split,
// logprobs) delivered as one JSON answer or as SSE chunks.
//
// Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health,
// POST /tokenize, POST /detokenize, GET /metrics, POST /generate (seed API),
// POST /v1/load_lora_adapter, POST /v1/unload_lora_adapter (with allow_runtime_lora).
// A request's `model` selects the base model (served name) or a loaded LoRA adapter by name.
//
// Threading: Handle() runs on an HTTP thread; engine callbacks only Post() the update to the
// request's own HTTP thread, where all per-request state lives. Engine and codec are shared and
// must be thread-safe for Submit/Abort/Stats and the const codec methods.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "runtime/engine.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/text_codec.h"

namespace petrel::server {

struct ApiOptions {
  std::string served_model_name;  // what clients send as `model`
  std::string model_root;         // reported by /v1/models
  // POST /v1/load_lora_adapter and /v1/unload_lora_adapter (they read server-side paths, so off
  // unless the operator asks for them, as in vLLM).
  bool allow_runtime_lora = false;
};

class Api {
 public:
  Api(ApiOptions options, Metrics* metrics);

  // Makes the API ready (until then /health answers 503 and model routes 503). Both pointers
  // must stay valid until the HTTP server is stopped; call once.
  void SetBackend(runtime::Engine* engine, const TextCodec* codec);
  bool ready() const { return ready_.load(std::memory_order_acquire); }

  // The HTTP handler (see http_server.h).
  void Handle(HttpRequest request, std::shared_ptr<Exchange> exchange);

  // Internal: per-request state (routes.cc). Public so the file's helpers can name it.
  struct Call;
  std::string NewId(const char* prefix);

 private:
  void Chat(const HttpRequest& req, std::shared_ptr<Exchange> ex);
  void Completion(const HttpRequest& req, std::shared_ptr<Exchange> ex, bool simple);
  void Tokenize(const HttpRequest& req, std::shared_ptr<Exchange> ex);
  void Detokenize(const HttpRequest& req, std::shared_ptr<Exchange> ex);
  void Models(std::shared_ptr<Exchange> ex);
  void MetricsText(std::shared_ptr<Exchange> ex);
  void LoraAdmin(const HttpRequest& req, std::shared_ptr<Exchange> ex, bool load);
  // `model` from a request: "" or the served name = the base model; a registered LoRA adapter's
  // name = that adapter (*adapter set). False: unknown model (answered 404).
  bool ResolveModel(const std::string& model, std::string* adapter) const;

  ApiOptions opts_;
  Metrics* metrics_;
  runtime::Engine* engine_ = nullptr;
  const TextCodec* codec_ = nullptr;
  std::atomic<bool> ready_{false};
  std::atomic<uint64_t> id_counter_{0};
  uint64_t id_salt_ = 0;
  int64_t created_ = 0;
};

}  // namespace petrel::server
