// The HTTP server and the OpenAI routes end to end over a loopback socket, with a fake engine and
// a byte-level fake tokenizer (fake_backend.h): response shapes, streaming, stop strings, errors,
// auth, body limit, CORS and disconnects.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_backend.h"
#include "server/http_server.h"
#include "server/routes.h"
#include "server/sse.h"

namespace petrel::server {
namespace {

struct Reply {
  int status = 0;
  std::string headers;
  std::string body;
  Json json() const { return Json::parse(body); }
};

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (sockaddr*)&a, sizeof(a)) != 0) return -1;
  return fd;
}

std::string Dechunk(const std::string& s) {
  std::string out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t eol = s.find("\r\n", pos);
    if (eol == std::string::npos) break;
    size_t n = std::stoul(s.substr(pos, eol - pos), nullptr, 16);
    if (n == 0) break;
    out += s.substr(eol + 2, n);
    pos = eol + 2 + n + 2;
  }
  return out;
}

// One request on a fresh connection (Connection: close), read to EOF.
Reply Http(int port, const std::string& method, const std::string& path, const std::string& body,
           const std::string& extra_headers = "") {
  int fd = Connect(port);
  EXPECT_GE(fd, 0);
  std::string req =
      method + " " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra_headers +
      "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += size_t(n);
  }
  std::string raw;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) raw.append(buf, size_t(n));
  close(fd);
  Reply r;
  size_t he = raw.find("\r\n\r\n");
  if (he == std::string::npos) return r;
  r.headers = raw.substr(0, he);
  r.status = std::stoi(raw.substr(9, 3));
  r.body = raw.substr(he + 4);
  std::string lower = r.headers;
  for (char& c : lower) c = char(std::tolower((unsigned char)c));
  if (lower.find("transfer-encoding: chunked") != std::string::npos) r.body = Dechunk(r.body);
  return r;
}

class ApiTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions opts = {}) {
    api_ = std::make_unique<Api>(
        ApiOptions{.served_model_name = "tiny", .model_root = "/m", .allow_runtime_lora = true},
        &metrics_);
    api_->SetBackend(&engine_, &codec_);
    opts.port = 0;
    auto s = HttpServer::Start(opts, [this](HttpRequest r, std::shared_ptr<Exchange> ex) {
      api_->Handle(std::move(r), std::move(ex));
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(s).value();
    port_ = server_->port();
  }
  void SetUp() override { StartServer(); }
  void TearDown() override {
    engine_.Shutdown();
    if (server_) server_->Stop();
  }
  Reply Post(const std::string& path, const std::string& body, const std::string& hdr = "") {
    return Http(port_, "POST", path, body, hdr);
  }
  std::vector<Json> Events(const Reply& r) {
    SseParser p;
    std::vector<Json> out;
    for (auto& e : p.Feed(r.body)) {
      if (e == "[DONE]") {
        out.push_back("DONE");
      } else {
        out.push_back(Json::parse(e));
      }
    }
    return out;
  }

  Metrics metrics_;
  testing::FakeEngine engine_;
  testing::FakeCodec codec_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

const std::string kChat = R"({"model":"tiny","messages":[{"role":"user","content":"hi"}])";

TEST_F(ApiTest, HealthModelsMetrics) {
  auto h = Http(port_, "GET", "/health", "");
  EXPECT_EQ(h.status, 200);
  auto m = Http(port_, "GET", "/v1/models", "");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.json()["data"][0]["id"], "tiny");
  auto x = Http(port_, "GET", "/metrics", "");
  EXPECT_EQ(x.status, 200);
  EXPECT_NE(x.body.find("petrel:num_requests_running"), std::string::npos);
  EXPECT_EQ(Http(port_, "GET", "/nope", "").status, 404);
  EXPECT_EQ(Http(port_, "GET", "/v1/chat/completions", "").status, 405);
}

TEST_F(ApiTest, ChatWhole) {
  auto r = Post("/v1/chat/completions", kChat + "}");
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], engine_.script);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["prompt_tokens"], std::string("<user>hi<assistant>").size());
  EXPECT_EQ(j["usage"]["completion_tokens"], engine_.script.size() + 1);  // + EOS
}

TEST_F(ApiTest, StreamConcatenatesToWhole) {
  auto whole = Post("/v1/chat/completions", kChat + "}").json();
  auto r = Post("/v1/chat/completions",
                kChat + R"(,"stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("text/event-stream"), std::string::npos);
  auto ev = Events(r);
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev.back(), "DONE");
  std::string text;
  std::string finish;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    EXPECT_EQ(ev[i]["object"], "chat.completion.chunk");
    if (ev[i]["choices"].empty()) continue;
    const Json& c = ev[i]["choices"][0];
    if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
    if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
  }
  EXPECT_EQ(text, whole["choices"][0]["message"]["content"]);
  EXPECT_EQ(finish, "stop");
  const Json& usage = ev[ev.size() - 2]["usage"];
  EXPECT_EQ(usage, whole["usage"]);
}

TEST_F(ApiTest, StopStringsAndMaxTokens) {
  auto r = Post("/v1/chat/completions", kChat + R"(,"stop":["answer"]})").json();
  EXPECT_EQ(r["choices"][0]["message"]["content"], "Hello world! The ");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  auto s = Post("/v1/chat/completions", kChat + R"(,"stop":"answer","stream":true})");
  std::string text;
  for (auto& e : Events(s)) {
    if (e == "DONE") continue;
    const Json& d = e["choices"][0]["delta"];
    if (d.contains("content")) text += d["content"].get<std::string>();
  }
  EXPECT_EQ(text, "Hello world! The ");
  auto m = Post("/v1/chat/completions", kChat + R"(,"max_tokens":5})").json();
  EXPECT_EQ(m["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(m["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(m["usage"]["completion_tokens"], 5);
  auto t = Post("/v1/chat/completions", kChat + R"(,"stop_token_ids":[33]})").json();
  EXPECT_EQ(t["choices"][0]["message"]["content"], "Hello world!");  // '!' = 33 is emitted
}

TEST_F(ApiTest, CompletionsShapesEchoLogprobsN) {
  auto r = Post("/v1/completions",
                R"({"model":"tiny","prompt":"SCRIPT:abc","echo":true,"logprobs":2,"n":2})");
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  EXPECT_EQ(j["object"], "text_completion");
  ASSERT_EQ(j["choices"].size(), 2u);
  EXPECT_EQ(j["choices"][1]["index"], 1);
  EXPECT_EQ(j["choices"][0]["text"], "SCRIPT:abcabc");
  const Json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"][0], "a");
  EXPECT_EQ(lp["text_offset"][0], 10);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 10);  // counted once per prompt
  auto tok = Post("/v1/completions", R"({"prompt":[83,67,82,73,80,84,58,120],"max_tokens":1})");
  EXPECT_EQ(tok.json()["choices"][0]["text"], "x");
}

TEST_F(ApiTest, ChatLogprobs) {
  auto j =
      Post("/v1/chat/completions", kChat + R"(,"logprobs":true,"top_logprobs":2,"max_tokens":3})")
          .json();
  const Json& c = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0]["token"], "H");
  EXPECT_EQ(c[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(c[0]["bytes"], Json::array({72}));
}

TEST_F(ApiTest, ReasoningAndToolCalls) {
  auto r =
      Post("/v1/chat/completions",
           R"({"messages":[{"role":"user","content":"SCRIPT:<think>\nhmm\n</think>\n\nok"}]})");
  // The fake template prefixes the role, so SCRIPT: is not at the start: use /v1/completions-like
  // prompt through the chat template instead.
  ASSERT_EQ(r.status, 200);
  engine_.script =
      "<think>\nplan\n</think>\n\nHi<tool_call>\n{\"name\":\"f\",\"arguments\":{\"x\":1}}\n</"
      "tool_call>";
  auto j = Post("/v1/chat/completions",
                kChat + R"(,"tools":[{"type":"function","function":{"name":"f"}}]})")
               .json();
  const Json& m = j["choices"][0]["message"];
  EXPECT_EQ(m["reasoning_content"], "plan");
  EXPECT_EQ(m["content"], "Hi");
  ASSERT_EQ(m["tool_calls"].size(), 1u);
  EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"], "{\"x\": 1}");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  // Streaming gives the same split.
  auto s = Post("/v1/chat/completions",
                kChat + R"(,"stream":true,"tools":[{"type":"function","function":{"name":"f"}}]})");
  std::string reasoning, content, finish;
  Json calls;
  for (auto& e : Events(s)) {
    if (e == "DONE") continue;
    const Json& c = e["choices"][0];
    if (c["delta"].contains("reasoning_content")) reasoning += c["delta"]["reasoning_content"];
    if (c["delta"].contains("content")) content += c["delta"]["content"];
    if (c["delta"].contains("tool_calls")) calls = c["delta"]["tool_calls"];
    if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
  }
  EXPECT_EQ(reasoning, "plan");
  EXPECT_EQ(content, "Hi");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["index"], 0);
  EXPECT_EQ(finish, "tool_calls");
  // Without tools the block stays content.
  auto n = Post("/v1/chat/completions", kChat + "}").json();
  EXPECT_NE(n["choices"][0]["message"]["content"].get<std::string>().find("<tool_call>"),
            std::string::npos);
}

TEST_F(ApiTest, ErrorsAreOpenAiShaped) {
  struct Case {
    std::string path, body;
    int status;
    const char* param;
  };
  for (const Case& c : std::vector<Case>{
           {"/v1/chat/completions", "{not json", 400, nullptr},
           {"/v1/chat/completions", "[]", 400, nullptr},
           {"/v1/chat/completions", R"({"messages":"x"})", 400, "messages"},
           {"/v1/chat/completions", kChat + R"(,"temperature":"hot"})", 400, "temperature"},
           {"/v1/chat/completions",
            R"({"model":"gpt-9","messages":[{"role":"user","content":"x"}]})", 404, "model"},
           {"/v1/chat/completions", kChat + R"(,"max_tokens":100000})", 400, "messages"},
           {"/v1/chat/completions", kChat + R"(,"logit_bias":{"99999":1}})", 400, "logit_bias"},
           {"/v1/completions", R"({"prompt":[1,2,100000]})", 400, "prompt"},
           {"/v1/completions", "{\"prompt\":\"" + std::string(300, 'x') + "\"}", 400, "prompt"},
           {"/v1/completions", R"({"prompt":""})", 400, nullptr},
       }) {
    auto r = Post(c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    Json j = Json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    ASSERT_TRUE(j.contains("error")) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"]["type"].is_string());
    if (c.param) {
      EXPECT_EQ(j["error"]["param"], c.param) << c.body;
    }
  }
  // Still serving.
  EXPECT_EQ(Post("/v1/chat/completions", kChat + "}").status, 200);
}

TEST_F(ApiTest, TokenizeDetokenizeGenerate) {
  auto t = Post("/tokenize", R"({"prompt":"ab"})").json();
  EXPECT_EQ(t["tokens"], Json::array({97, 98}));
  EXPECT_EQ(t["count"], 2);
  auto d = Post("/detokenize", R"({"tokens":[104,105]})").json();
  EXPECT_EQ(d["prompt"], "hi");
  auto g = Post("/generate", R"({"prompt":"SCRIPT:xyz","max_tokens":2})").json();
  EXPECT_EQ(g["prompt"], "SCRIPT:xyz");
  EXPECT_EQ(g["response"], "xy");
}

TEST_F(ApiTest, DisconnectAbortsRequest) {
  engine_.step = std::chrono::milliseconds(20);
  engine_.script = std::string(200, 'z');
  int fd = Connect(port_);
  std::string body = kChat + R"(,"stream":true,"max_tokens":200})";
  std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  char buf[4096];
  ssize_t got = recv(fd, buf, sizeof(buf), 0);
  ASSERT_GT(got, 0);  // headers / first chunk arrived
  ASSERT_NE(std::string(buf, size_t(got)).find("200 OK"), std::string::npos)
      << std::string(buf, size_t(got));
  EXPECT_EQ(engine_.Stats().running, 1);
  close(fd);
  for (int i = 0; i < 100 && engine_.Stats().running != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(engine_.Stats().running, 0);
  EXPECT_NE(Http(port_, "GET", "/metrics", "")
                .body.find("petrel:client_disconnects_total{model_name=\"tiny\"} 1"),
            std::string::npos);
}

TEST_F(ApiTest, KeepAliveServesSeveralRequests) {
  int fd = Connect(port_);
  std::string req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < 3; ++i) {
    send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buf, 12), "HTTP/1.1 200");
  }
  close(fd);
}

TEST_F(ApiTest, QueueFullIs429) {
  engine_.max_waiting = 1;
  engine_.step = std::chrono::milliseconds(20);
  engine_.script = std::string(100, 'q');
  // Occupy the only slot with a streamed request whose client reads nothing yet.
  int fd = Connect(port_);
  std::string body = kChat + R"(,"stream":true})";
  std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  for (int i = 0; i < 100 && engine_.Stats().running == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto r = Post("/v1/chat/completions", kChat + "}");
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.json()["error"]["type"], "rate_limit_error");
  close(fd);
}

class ApiTimeoutTest : public ApiTest {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.request_timeout_s = 0.3;
    StartServer(o);
  }
};

TEST_F(ApiTimeoutTest, TimeoutAnswers504AndAborts) {
  engine_.step = std::chrono::milliseconds(20);
  engine_.script = std::string(200, 't');
  auto r = Post("/v1/chat/completions", kChat + R"(,"max_tokens":200})");
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "timeout");
  for (int i = 0; i < 100 && engine_.Stats().running != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(engine_.Stats().running, 0);
  // A streamed request that times out ends with an error event and [DONE].
  auto s = Post("/v1/completions", R"({"prompt":"x","max_tokens":200,"stream":true})");
  EXPECT_EQ(s.status, 200);
  EXPECT_NE(s.body.find("\"timeout\""), std::string::npos);
  EXPECT_NE(s.body.find("data: [DONE]"), std::string::npos);
}

TEST_F(ApiTest, LoraAdaptersByModelName) {
  auto bad = Post("/v1/load_lora_adapter", R"({"lora_name":"sql","lora_path":"/missing"})");
  EXPECT_EQ(bad.status, 404) << bad.body;
  EXPECT_EQ(Post("/v1/load_lora_adapter", R"({"lora_path":"/a"})").status, 400);
  auto ok = Post("/v1/load_lora_adapter", R"({"lora_name":"sql","lora_path":"/adapters/sql"})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  auto models = Http(port_, "GET", "/v1/models", "").json();
  ASSERT_EQ(models["data"].size(), 2u);
  EXPECT_EQ(models["data"][1]["id"], "sql");
  EXPECT_EQ(models["data"][1]["parent"], "tiny");
  auto r = Post("/v1/completions", R"({"model":"sql","prompt":"x","max_tokens":2})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(engine_.last_adapter, "sql");
  Post("/v1/completions", R"({"model":"tiny","prompt":"x","max_tokens":2})");
  EXPECT_EQ(engine_.last_adapter, "");
  EXPECT_EQ(Post("/v1/unload_lora_adapter", R"({"lora_name":"sql"})").status, 200);
  EXPECT_EQ(Post("/v1/completions", R"({"model":"sql","prompt":"x"})").status, 404);
  EXPECT_EQ(Post("/v1/unload_lora_adapter", R"({"lora_name":"sql"})").status, 404);
}

class ApiOptionsTest : public ApiTest {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.api_key = "sekret";
    o.max_body_bytes = 1000;
    o.allowed_origins = {"http://ok.example"};
    StartServer(o);
  }
};

TEST_F(ApiOptionsTest, AuthBodyLimitCors) {
  EXPECT_EQ(Http(port_, "GET", "/health", "").status, 200);  // open
  auto no = Post("/v1/chat/completions", kChat + "}");
  EXPECT_EQ(no.status, 401);
  EXPECT_EQ(no.json()["error"]["type"], "authentication_error");
  EXPECT_EQ(Post("/v1/chat/completions", kChat + "}", "Authorization: Bearer wrong\r\n").status,
            401);
  EXPECT_EQ(Post("/v1/chat/completions", kChat + "}", "Authorization: Bearer sekret\r\n").status,
            200);
  auto big = Post("/v1/completions", "{\"prompt\":\"" + std::string(5000, 'x') + "\"}",
                  "Authorization: Bearer sekret\r\n");
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.json()["error"]["code"], "payload_too_large");
  auto pre = Http(port_, "OPTIONS", "/v1/chat/completions", "",
                  "Origin: http://ok.example\r\nAccess-Control-Request-Method: POST\r\n");
  EXPECT_EQ(pre.status, 204);
  EXPECT_NE(pre.headers.find("Access-Control-Allow-Origin: http://ok.example"), std::string::npos);
  auto other = Http(port_, "GET", "/health", "", "Origin: http://evil.example\r\n");
  EXPECT_EQ(other.headers.find("Access-Control-Allow-Origin"), std::string::npos);
}

}  // namespace
}  // namespace petrel::server
