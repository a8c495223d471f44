// The HTTP/1.1 transport: an asynchronous server (Boost.Beast + Asio, C++20 coroutines) with
// keep-alive, a request body limit, per-request timeouts, CORS, Bearer-key auth and streaming
// (chunked) responses. It knows nothing about OpenAI: each request goes to one Handler with an
// Exchange through which the handler answers, now or later, in one piece or streamed.
//
// Threading: `threads` event loops, each on its own thread; a connection lives on one loop for
// its whole life, so everything about one request (its Exchange, the handler's per-request state)
// runs on one thread and needs no locks. Work from other threads (engine callbacks) enters with
// Exchange::Post(). No Boost types appear here, so route code compiles fast.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace petrel::server {

struct HttpRequest {
  std::string method;                                        // "GET", "POST", ...
  std::string path;                                          // target without the query string
  std::string query;                                         // after '?', "" if none
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  // First header with this (lower-case) name, or "".
  std::string_view Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// One request in flight, as the handler sees it. All methods except Post() must be called on the
// exchange's thread (the one the handler was called on, or inside a Post()ed function).
// Calls after the exchange ended (response complete, client gone, timeout) are ignored.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // Thread-safe. Runs `fn` on the exchange's thread. Always runs (also after cancellation) as
  // long as the server is running, so per-request state can clean up there.
  virtual void Post(std::function<void()> fn) = 0;
  // A complete response; ends the exchange.
  virtual void Respond(HttpResponse response) = 0;
  // Starts a streamed response (chunked), then Write() pieces, then End().
  virtual void BeginStream(int status, std::string content_type) = 0;
  virtual void Write(std::string data) = 0;
  virtual void End() = 0;
  // `fn` runs once on the exchange's thread if the exchange is cut short: the client disconnected
  // or the request timed out (the transport has then answered 504 / ended the stream itself).
  virtual void OnCancel(std::function<void()> fn) = 0;
  virtual bool cancelled() const = 0;
};

using Handler = std::function<void(HttpRequest request, std::shared_ptr<Exchange> exchange)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                           // 0 = pick a free port (see HttpServer::port())
  int threads = 2;                           // event loops
  uint64_t max_body_bytes = 8u << 20;        // larger bodies get 413
  double request_timeout_s = 600;            // from request read to last byte written; 0 = none
  double idle_timeout_s = 120;               // keep-alive connection without a request
  std::vector<std::string> allowed_origins;  // CORS; empty = no CORS headers, "*" = any
  std::string api_key;                       // "" = no auth
  std::vector<std::string> open_paths = {"/health"};  // reachable without the key
  // Called with every response status (metrics); may be empty. Any thread.
  std::function<void(int status)> on_status;
};

class HttpServer {
 public:
  // Binds and starts the event loops. Errors: address in use, bad host (kIo / kInvalidArgument).
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   Handler handler);
  virtual ~HttpServer() = default;
  // The bound port (useful with port 0).
  virtual int port() const = 0;
  // Stops accepting and closes the loops; in-flight exchanges are dropped. Idempotent; the
  // destructor calls it. Call only after nothing can Post() any more (engine shut down).
  virtual void Stop() = 0;
};

}  // namespace petrel::server
