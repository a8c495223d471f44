// Beast/Asio implementation of http_server.h. One coroutine per connection reads a request,
// hands it to the handler, then pumps the exchange's queued output (a full response, or a
// chunked stream) to the socket until the exchange ends. While the exchange is open a one-shot
// readiness wait on the socket notices a client that hangs up, and a deadline timer enforces the
// per-request timeout; both cancel the exchange so the handler can abort its engine request.
#include "server/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <deque>
#include <thread>
#include <utility>  // Boost 1.74 coroutine support needs std::exchange declared first.

#include "core/log.h"
#include "server/error_map.h"
#include "server/sse.h"

namespace petrel::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower((unsigned char)c));
  return out;
}

// Compares without an early exit so the key cannot be guessed byte by byte from timing.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= (unsigned char)(a[i] ^ b[i % (b.size() + 1)]);
  return diff == 0;
}

// What the exchange asks the connection to send, in order.
struct Event {
  enum class Kind { kFull, kHead, kData, kEnd } kind;
  HttpResponse response;  // kFull; kHead uses status + content_type
  std::string data;       // kData
};

class ExchangeImpl : public Exchange, public std::enable_shared_from_this<ExchangeImpl> {
 public:
  explicit ExchangeImpl(asio::any_io_executor ex) : ex_(ex), signal_(ex), deadline_(ex) {}

  void Post(std::function<void()> fn) override {
    // A throw here would unwind through io_context::run() and end the process: contain it.
    asio::post(ex_, [fn = std::move(fn)] {
      try {
        fn();
      } catch (const std::exception& e) {
        LogError("request callback threw: ", e.what());
      }
    });
  }

  void Respond(HttpResponse response) override {
    if (ended_) return;
    ended_ = true;
    events_.push_back({Event::Kind::kFull, std::move(response), {}});
    Wake();
  }
  void BeginStream(int status, std::string content_type) override {
    if (ended_ || began_) return;
    began_ = true;
    HttpResponse head;
    head.status = status;
    head.content_type = std::move(content_type);
    events_.push_back({Event::Kind::kHead, std::move(head), {}});
    Wake();
  }
  void Write(std::string data) override {
    if (ended_ || !began_ || data.empty()) return;
    events_.push_back({Event::Kind::kData, {}, std::move(data)});
    Wake();
  }
  void End() override {
    if (ended_) return;
    ended_ = true;
    events_.push_back({Event::Kind::kEnd, {}, {}});
    Wake();
  }
  void OnCancel(std::function<void()> fn) override {
    if (cancelled_) {
      if (fn) fn();
      return;
    }
    on_cancel_ = std::move(fn);
  }
  bool cancelled() const override { return cancelled_; }

  // Transport side ---------------------------------------------------------------------------
  void Cancel(bool timed_out) {
    if (cancelled_ || finished_) return;
    cancelled_ = true;
    timed_out_ = timed_out;
    Wake();
    if (on_cancel_) {
      auto fn = std::move(on_cancel_);
      on_cancel_ = nullptr;
      fn();
    }
  }
  void Wake() { signal_.cancel(); }

  asio::any_io_executor ex_;
  asio::steady_timer signal_;    // cancelled to wake the connection coroutine
  asio::steady_timer deadline_;  // per-request timeout
  std::deque<Event> events_;
  std::function<void()> on_cancel_;
  bool began_ = false;     // BeginStream called
  bool ended_ = false;     // Respond or End called: no more output accepted
  bool finished_ = false;  // the transport wrote the last byte
  bool cancelled_ = false;
  bool timed_out_ = false;
};

class ServerImpl : public HttpServer {
 public:
  ServerImpl(HttpServerOptions options, Handler handler)
      : opts_(std::move(options)), handler_(std::move(handler)) {}
  ~ServerImpl() override { Stop(); }

  Status Listen() {
    int n = std::max(1, opts_.threads);
    for (int i = 0; i < n; ++i) contexts_.push_back(std::make_unique<asio::io_context>(1));
    beast::error_code ec;
    auto addr = asio::ip::make_address(opts_.host, ec);
    if (ec) return InvalidArgument("--host ", opts_.host, ": ", ec.message());
    tcp::endpoint ep(addr, (unsigned short)opts_.port);
    acceptor_ = std::make_unique<tcp::acceptor>(*contexts_[0]);
    acceptor_->open(ep.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(ep, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return IoError("listening on ", opts_.host, ":", opts_.port, ": ", ec.message());
    port_ = acceptor_->local_endpoint().port();
    asio::co_spawn(*contexts_[0], Accept(), asio::detached);
    for (auto& ctx : contexts_) {
      threads_.emplace_back([c = ctx.get()] {
        auto guard = asio::make_work_guard(*c);
        c->run();
      });
    }
    return OkStatus();
  }

  int port() const override { return port_; }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    for (auto& ctx : contexts_) ctx->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    acceptor_.reset();
    contexts_.clear();
  }

 private:
  awaitable<void> Accept() {
    size_t next = 0;
    for (;;) {
      beast::error_code ec;
      auto& ctx = *contexts_[next++ % contexts_.size()];
      tcp::socket sock = co_await acceptor_->async_accept(asio::any_io_executor(ctx.get_executor()),
                                                          asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || stopped_) co_return;
        // Out of file descriptors and the like: back off briefly rather than spin.
        LogWarn("accept: ", ec.message());
        asio::steady_timer t(co_await asio::this_coro::executor);
        t.expires_after(std::chrono::milliseconds(50));
        co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      auto ex = sock.get_executor();
      asio::co_spawn(ex, Session(std::move(sock)), asio::detached);
    }
  }

  // CORS response headers for a request with `origin` ("" = not a CORS request).
  void AddCors(std::string_view origin, std::vector<std::pair<std::string, std::string>>* h) {
    if (origin.empty() || opts_.allowed_origins.empty()) return;
    for (const auto& o : opts_.allowed_origins) {
      if (o == "*") {
        h->emplace_back("Access-Control-Allow-Origin", "*");
        return;
      }
      if (o == origin) {
        h->emplace_back("Access-Control-Allow-Origin", std::string(origin));
        h->emplace_back("Vary", "Origin");
        return;
      }
    }
  }

  void Count(int status) {
    if (opts_.on_status) opts_.on_status(status);
  }

  awaitable<void> WriteFull(beast::tcp_stream& stream, const HttpResponse& r, unsigned version,
                            bool keep_alive, beast::error_code& ec) {
    http::response<http::string_body> res{http::status(r.status), version};
    res.set(http::field::server, "petrel");
    if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.body() = r.body;
    res.keep_alive(keep_alive);
    res.prepare_payload();
    Count(r.status);
    co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
  }

  HttpResponse ErrorResponse(const ApiError& e, std::string_view origin) {
    HttpResponse r;
    r.status = e.status;
    r.body = ErrorBody(e);
    AddCors(origin, &r.headers);
    return r;
  }

  // After answering 413 the client may still be sending: read and discard (bounded) so closing
  // does not reset the connection before the client has read the answer.
  awaitable<void> DrainAndClose(beast::tcp_stream& stream) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(5));
    std::vector<char> sink(64 * 1024);
    size_t total = 0;
    while (total < (256u << 20)) {
      size_t n = co_await stream.async_read_some(asio::buffer(sink),
                                                 asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      total += n;
    }
    stream.socket().close(ec);
  }

  awaitable<void> Session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    beast::error_code ec;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(opts_.max_body_bytes);
      parser.header_limit(64 * 1024);
      stream.expires_after(std::chrono::milliseconds(int64_t(opts_.idle_timeout_s * 1000)));
      co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec == http::error::body_limit) {
        std::string origin(parser.get()[http::field::origin]);
        co_await WriteFull(stream, ErrorResponse(PayloadTooLarge(opts_.max_body_bytes), origin),
                           parser.get().version(), false, ec);
        co_await DrainAndClose(stream);
        co_return;
      }
      if (ec) {
        if (ec.category() == beast::error_code(http::error::end_of_stream).category() &&
            ec != http::error::end_of_stream && ec != http::error::partial_message) {
          // Malformed HTTP: answer 400 once, then close.
          co_await WriteFull(
              stream, ErrorResponse(BadRequest("malformed HTTP request: " + ec.message()), ""), 11,
              false, ec);
        }
        break;
      }
      stream.expires_never();
      auto& req = parser.get();
      const unsigned version = req.version();
      bool keep_alive = req.keep_alive();

      HttpRequest hr;
      hr.method = std::string(req.method_string());
      std::string_view target(req.target().data(), req.target().size());
      size_t q = target.find('?');
      hr.path = std::string(target.substr(0, q));
      if (q != std::string_view::npos) hr.query = std::string(target.substr(q + 1));
      for (const auto& f : req) {
        hr.headers.emplace_back(
            Lower(std::string_view(f.name_string().data(), f.name_string().size())),
            std::string(f.value()));
      }
      hr.body = std::move(req.body());
      const std::string origin(hr.Header("origin"));

      // CORS preflight: answered here, never authenticated (browsers send no credentials).
      if (hr.method == "OPTIONS") {
        HttpResponse r;
        r.status = 204;
        r.content_type = "";
        AddCors(origin, &r.headers);
        r.headers.emplace_back("Allow", "GET, POST, OPTIONS");
        if (!opts_.allowed_origins.empty()) {
          r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
          std::string want(hr.Header("access-control-request-headers"));
          r.headers.emplace_back("Access-Control-Allow-Headers",
                                 want.empty() ? "Authorization, Content-Type" : want);
          r.headers.emplace_back("Access-Control-Max-Age", "600");
        }
        co_await WriteFull(stream, r, version, keep_alive, ec);
        if (ec || !keep_alive) break;
        continue;
      }
      if (!opts_.api_key.empty() && std::find(opts_.open_paths.begin(), opts_.open_paths.end(),
                                              hr.path) == opts_.open_paths.end()) {
        std::string_view auth = hr.Header("authorization");
        bool ok = auth.size() > 7 && Lower(auth.substr(0, 7)) == "bearer " &&
                  ConstantTimeEquals(auth.substr(7), opts_.api_key);
        if (!ok) {
          auto r = ErrorResponse(Unauthorized(), origin);
          r.headers.emplace_back("WWW-Authenticate", "Bearer");
          co_await WriteFull(stream, r, version, keep_alive, ec);
          if (ec || !keep_alive) break;
          continue;
        }
      }

      bool ok = co_await RunExchange(stream, std::move(hr), origin, version, keep_alive);
      if (!ok || !keep_alive) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.socket().close(ec);
  }

  // Hands the request to the handler and writes what it produces. Returns false when the
  // connection must be closed (write error, client gone, timeout, HTTP/1.0 stream).
  awaitable<bool> RunExchange(beast::tcp_stream& stream, HttpRequest hr, const std::string& origin,
                              unsigned version, bool& keep_alive) {
    auto ex = std::make_shared<ExchangeImpl>(stream.get_executor());
    auto& sock = stream.socket();

    // Hang-up watch: the client sends nothing while it waits for its answer, so the socket
    // becoming readable means EOF / reset (or a pipelined request, which we leave alone).
    sock.async_wait(tcp::socket::wait_read, [ex, &sock](const beast::error_code& wec) {
      if (wec || ex->finished_) return;
      char c;
      ssize_t n = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) ex->Cancel(false);
    });
    if (opts_.request_timeout_s > 0) {
      ex->deadline_.expires_after(
          std::chrono::milliseconds(int64_t(opts_.request_timeout_s * 1000)));
      ex->deadline_.async_wait([ex](const beast::error_code& dec) {
        if (!dec) ex->Cancel(true);
      });
    }

    try {
      handler_(std::move(hr), ex);
    } catch (const std::exception& e) {
      // Handlers report errors as values; a throw is a bug, answered 500 without dying.
      LogError("handler threw: ", e.what());
      HttpResponse r;
      r.status = 500;
      r.body = ErrorBody(ApiError{.status = 500,
                                  .type = "internal_error",
                                  .message = std::string("internal error: ") + e.what(),
                                  .param = "",
                                  .code = ""});
      ex->Respond(std::move(r));
    }

    beast::error_code ec;
    bool streaming = false, chunked = version >= 11, alive = true;
    while (alive) {
      while (ex->events_.empty() && !ex->cancelled_) {
        ex->signal_.expires_at(asio::steady_timer::time_point::max());
        co_await ex->signal_.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      if (ex->cancelled_) {
        if (ex->timed_out_) {
          // Tell the client why, in whatever shape the response already has.
          ApiError e{.status = 504,
                     .type = "timeout_error",
                     .message = "request timed out after " +
                                std::to_string(int(opts_.request_timeout_s)) + " s",
                     .param = "",
                     .code = "timeout"};
          if (!streaming) {
            co_await WriteFull(stream, ErrorResponse(e, origin), version, false, ec);
          } else {
            std::string tail = SseEvent(ErrorBody(e)) + SseDone();
            if (chunked) {
              char hex[32];
              std::snprintf(hex, sizeof(hex), "%zx\r\n", tail.size());
              tail = hex + tail + "\r\n0\r\n\r\n";
            }
            co_await asio::async_write(stream, asio::buffer(tail),
                                       asio::redirect_error(use_awaitable, ec));
          }
        }
        alive = false;
        break;
      }
      // Coalesce queued data into one write: under load many tokens wait here together.
      Event ev = std::move(ex->events_.front());
      ex->events_.pop_front();
      if (ev.kind == Event::Kind::kFull) {
        AddCors(origin, &ev.response.headers);
        co_await WriteFull(stream, ev.response, version, keep_alive, ec);
        break;
      }
      if (ev.kind == Event::Kind::kHead) {
        streaming = true;
        http::response<http::empty_body> res{http::status(ev.response.status), version};
        res.set(http::field::server, "petrel");
        res.set(http::field::content_type, ev.response.content_type);
        res.set(http::field::cache_control, "no-cache");
        std::vector<std::pair<std::string, std::string>> cors;
        AddCors(origin, &cors);
        for (const auto& [k, v] : cors) res.set(k, v);
        if (chunked) {
          res.chunked(true);
        } else {
          keep_alive = false;  // HTTP/1.0: the end of the stream is the end of the connection
        }
        res.keep_alive(keep_alive);
        Count(ev.response.status);
        http::response_serializer<http::empty_body> sr{res};
        co_await http::async_write_header(stream, sr, asio::redirect_error(use_awaitable, ec));
        if (ec) break;
        continue;
      }
      std::string out;
      bool end = ev.kind == Event::Kind::kEnd;
      if (!end) out = std::move(ev.data);
      while (!end && !ex->events_.empty()) {
        Event& next = ex->events_.front();
        if (next.kind == Event::Kind::kEnd)
          end = true;
        else
          out += next.data;
        ex->events_.pop_front();
      }
      std::string framed;
      if (chunked) {
        if (!out.empty()) {
          char hex[32];
          std::snprintf(hex, sizeof(hex), "%zx\r\n", out.size());
          framed = hex;
          framed += out;
          framed += "\r\n";
        }
        if (end) framed += "0\r\n\r\n";
      } else {
        framed = std::move(out);
      }
      if (!framed.empty()) {
        co_await asio::async_write(stream, asio::buffer(framed),
                                   asio::redirect_error(use_awaitable, ec));
        if (ec) break;
      }
      if (end) break;
    }
    if (ec && !ex->cancelled_) ex->Cancel(false);  // write failed: the client is gone
    ex->finished_ = true;
    ex->deadline_.cancel();
    beast::error_code ignore;
    sock.cancel(ignore);  // ends the hang-up watch
    co_return alive && !ec && !ex->cancelled_ && (streaming ? chunked : true);
  }

  HttpServerOptions opts_;
  Handler handler_;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
  int port_ = 0;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      Handler handler) {
  auto server = std::make_unique<ServerImpl>(options, std::move(handler));
  PETREL_TRY(server->Listen());
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace petrel::server
