// `petrel serve`: the OpenAI-compatible HTTP server. The socket is opened first (so /health can
// answer 503 while the model loads), then the tokenizer, chat template, weights and engine are
// loaded and the API goes ready. SIGINT / SIGTERM shut down in order: engine (aborts what is in
// flight), then the HTTP loops.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "cli/model_text.h"
#include "core/log.h"
#include "runtime/engine.h"
#include "server/hf_text_codec.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/routes.h"

namespace petrel::cli {

namespace {

namespace fs = std::filesystem;

// The model bundled in the repository: next to the binary (build/bin/../../tests/fixtures) or
// under the current directory.
std::string DefaultModelDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) candidates.push_back(exe.parent_path() / ".." / ".." / "tests/fixtures/qwen3-tiny");
  candidates.push_back(fs::current_path(ec) / "tests/fixtures/qwen3-tiny");
  for (const auto& c : candidates) {
    if (fs::exists(c / "config.json", ec)) return fs::weakly_canonical(c, ec).string();
  }
  return "";
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string item =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

int RunServe(int argc, char** argv) {
  server::HttpServerOptions http;
  std::string served_name, origins;
  int max_model_len = 0, max_num_seqs = 256, max_num_batched_tokens = 2048, max_waiting = 1024;
  int64_t kv_cache_memory = 0, max_body_bytes = int64_t(http.max_body_bytes);
  double request_timeout = http.request_timeout_s;
  double gpu_memory_utilization = 0.9;
  std::string tokenizer_dir;
  bool no_prefix_caching = false, enable_lora_loading = false;
  std::vector<std::string> lora_modules;
  int max_loras = 8;
  std::string log_level = "info", kv_cache_dtype = "auto", pipeline_decode = "auto";
  ModelFlags mf;
  Flags f(
      "petrel serve [MODEL_DIR] [flags]   (no MODEL_DIR: the bundled tests/fixtures/qwen3-tiny)");
  f.Add("host", &http.host, "address to listen on (default 127.0.0.1)")
      .Add("port", &http.port, "TCP port (default 8000; 0 = any free port, printed at start)")
      .Add("served-model-name", &served_name, "the `model` clients send (default: directory name)")
      .Add("api-key", &http.api_key, "require `Authorization: Bearer KEY` (except /health)")
      .Add("max-model-len", &max_model_len, "context limit, prompt + output (default: the model's)")
      .Add("kv-cache-memory", &kv_cache_memory,
           "bytes for the KV cache (CPU default: sized from max-model-len x max-num-seqs, "
           "capped; on a GPU a cap on what --gpu-memory-utilization leaves)")
      .Add("gpu-memory-utilization", &gpu_memory_utilization,
           "GPU: share of device memory for weights, activations and KV cache (default 0.9)")
      .Add("tokenizer", &tokenizer_dir,
           "directory with tokenizer.json / tokenizer_config.json (default: MODEL_DIR; e.g. for "
           "--load-format dummy models that have only config.json)")
      .Add("max-num-seqs", &max_num_seqs, "sequences decoded together (default 256)")
      .Add("max-num-batched-tokens", &max_num_batched_tokens,
           "tokens per engine step (default 2048)")
      .Add("max-waiting", &max_waiting, "queued requests beyond this get HTTP 429 (default 1024)")
      .Add("http-threads", &http.threads, "HTTP event-loop threads (default 2)")
      .Add("max-body-bytes", &max_body_bytes, "larger request bodies get 413 (default 8 MiB)")
      .Add("request-timeout", &request_timeout, "seconds per request, 0 = none (default 600)")
      .Add("allowed-origins", &origins, "CORS origins, comma-separated, or * (default: no CORS)")
      .Add("log-level", &log_level, "debug, info, warn or error")
      .Add("lora-modules", &lora_modules,
           "NAME=PATH: serve a LoRA adapter as model NAME (repeatable)")
      .Add("lora", &lora_modules, "same as --lora-modules")
      .Add("max-loras", &max_loras, "LoRA adapters kept resident (LRU of idle ones; default 8)")
      .Add("kv-cache-dtype", &kv_cache_dtype, "auto (f32 on the CPU, bf16 on a GPU), f32, bf16 or int8 (CPU; per-token, per-head scales)")
      .Add("pipeline-decode", &pipeline_decode,
           "auto (default: on a GPU, each decode step is launched before the previous step's "
           "tokens reach the host), on or off")
      .AddSwitch("enable-lora-loading", &enable_lora_loading,
                 "allow POST /v1/load_lora_adapter and /v1/unload_lora_adapter")
      .AddSwitch("no-prefix-caching", &no_prefix_caching, "turn automatic prefix caching off");
  mf.Register(f);
  if (auto st = f.Parse(argc, argv); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() > 1) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  if (log_level == "debug") SetLogLevel(LogLevel::kDebug);
  if (log_level == "warn") SetLogLevel(LogLevel::kWarn);
  if (log_level == "error") SetLogLevel(LogLevel::kError);
  std::string dir = f.positional().empty() ? DefaultModelDir() : f.positional()[0];
  if (dir.empty()) {
    return ReportError(
        NotFound("no MODEL_DIR given and tests/fixtures/qwen3-tiny not found next "
                 "to the binary or in the current directory"));
  }
  if (served_name.empty()) {
    fs::path p(dir);
    while (!p.empty() && p.filename().empty()) p = p.parent_path();  // trailing '/'
    served_name = p.filename().string();
  }
  http.max_body_bytes = uint64_t(std::max<int64_t>(1, max_body_bytes));
  http.request_timeout_s = request_timeout;
  http.allowed_origins = SplitList(origins);

  // Signals are taken by sigwait below: block them before any thread starts so every thread
  // inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server::Metrics metrics;
  server::Api api(server::ApiOptions{.served_model_name = served_name,
                                     .model_root = dir,
                                     .allow_runtime_lora = enable_lora_loading},
                  &metrics);
  http.on_status = [&metrics](int status) { metrics.CountHttp(status); };
  auto srv = server::HttpServer::Start(
      http, [&api](server::HttpRequest r, std::shared_ptr<server::Exchange> ex) {
        api.Handle(std::move(r), std::move(ex));
      });
  if (!srv.ok()) return ReportError(srv.error());
  LogInfo("listening on http://", http.host, ":", (*srv)->port(), " (loading ", dir, ")");

  // A .gguf file carries its own tokenizer and chat template (cli/model_text.h).
  Result<std::unique_ptr<server::TextCodec>> codec = std::unique_ptr<server::TextCodec>();
  if (IsGgufPath(dir)) {
    auto tok = LoadTokenizer(dir);
    if (!tok.ok()) return ReportError(tok.error());
    codec = server::MakeHfTextCodec(std::move(tok).value(), LoadChatTemplate(dir));
  } else {
    codec = server::LoadHfTextCodec(tokenizer_dir.empty() ? dir : tokenizer_dir);
  }
  if (!codec.ok()) return ReportError(codec.error());
  auto model = model::LoadModel(dir, mf.ToLoadOptions());
  if (!model.ok()) return ReportError(model.error());
  runtime::EngineOptions eo;
  eo.max_num_seqs = max_num_seqs;
  eo.max_num_batched_tokens = max_num_batched_tokens;
  eo.max_model_len = max_model_len;
  eo.kv_cache_bytes = kv_cache_memory;
  eo.gpu_memory_utilization = gpu_memory_utilization;
  eo.max_waiting = max_waiting;
  eo.enable_prefix_caching = !no_prefix_caching;
  eo.n_threads = mf.threads;
  eo.max_loras = max_loras;
  eo.kv_cache_dtype = kv_cache_dtype;
  eo.pipeline_decode = pipeline_decode;
  auto engine = runtime::Engine::Create(std::move(model).value(), eo);
  if (!engine.ok()) return ReportError(engine.error());
  const auto& info = (*engine)->model_info();
  LogInfo("model ", served_name, " (", info.architecture, "): weights ", info.weight_bytes,
          " bytes; KV ", info.kv_bytes_per_token, " bytes/token; KV pool ", info.kv_blocks,
          " blocks = ", info.kv_capacity_tokens, " tokens; max concurrency ",
          info.max_concurrency, "x at max_model_len ", info.max_model_len, "; max_num_seqs ",
          eo.max_num_seqs);
  for (const auto& spec : lora_modules) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return ReportError(InvalidArgument("--lora-modules: expected NAME=PATH, got \"", spec, "\""));
    }
    auto st = (*engine)->LoadAdapter(spec.substr(0, eq), spec.substr(eq + 1));
    if (!st.ok()) return ReportError(st.error().WithContext("--lora-modules " + spec));
    LogInfo("LoRA adapter ", spec.substr(0, eq), " from ", spec.substr(eq + 1));
  }
  api.SetBackend(engine->get(), codec->get());
  // One line on stdout for scripts (the e2e fixture reads the port from it).
  std::printf("petrel serve: ready on http://%s:%d model=%s\n", http.host.c_str(), (*srv)->port(),
              served_name.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&sigs, &sig);
  LogInfo("signal ", sig, ": shutting down");
  (*engine)->Shutdown();
  (*srv)->Stop();
  return 0;
}

}  // namespace petrel::cli
