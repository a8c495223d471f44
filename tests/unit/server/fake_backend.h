// Test doubles for the HTTP/API tests: a byte-level "tokenizer" (token id = byte value) and an
// engine that answers every prompt with a fixed script of bytes on its own thread, honouring
// max_new_tokens, stop_token_ids, EOS, Abort and the waiting-queue limit like the real engine.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "runtime/engine.h"
#include "server/text_codec.h"
#include "template/output_parser.h"

namespace petrel::server::testing {

inline constexpr int32_t kFakeEos = 300;
inline constexpr int kFakeVocab = 512;

class FakeStream : public TextStream {
 public:
  std::string Add(int32_t t) override { return t < 256 ? std::string(1, char(t)) : ""; }
  std::string Finish() override { return ""; }
};

class FakeCodec : public TextCodec {
 public:
  Result<std::vector<int32_t>> Encode(std::string_view text, bool) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  Result<std::string> Decode(std::span<const int32_t> ids, bool) const override {
    std::string s;
    for (int32_t id : ids) {
      if (id < 0 || id >= kFakeVocab) return OutOfRange("id ", id);
      if (id < 256) s += char(id);
    }
    return s;
  }
  std::string TokenText(int32_t id) const override {
    return id < 256 ? std::string(1, char(id)) : "<eos>";
  }
  std::unique_ptr<TextStream> NewStream(bool) const override {
    return std::make_unique<FakeStream>();
  }
  int vocab_size() const override { return kFakeVocab; }
  Result<std::string> ApplyChatTemplate(const OrderedJson& messages, const OrderedJson&, bool agp,
                                        const Json& kwargs) const override {
    std::string out;
    for (const auto& m : messages) {
      out += "<" + m["role"].get<std::string>() + ">";
      if (m.contains("content") && m["content"].is_string()) out += m["content"].get<std::string>();
    }
    if (agp) out += "<assistant>";
    if (kwargs.contains("enable_thinking") && kwargs["enable_thinking"] == true) out += "<think>\n";
    return out;
  }
  // The real parser of the template module (the fake only replaces tokenizer and template).
  std::unique_ptr<ChatParser> NewChatParser(std::string_view prompt, bool tools) const override {
    jinja::OutputParserOptions o;
    o.starts_in_reasoning = jinja::PromptOpensReasoning(prompt);
    o.tool_calls = tools ? jinja::ToolCallFormat::kHermes : jinja::ToolCallFormat::kNone;
    return std::make_unique<Parser>(o);
  }

 private:
  class Parser : public ChatParser {
   public:
    explicit Parser(const jinja::OutputParserOptions& o) : p_(jinja::MakeOutputParser(o)) {}
    ChatDelta Feed(std::string_view t) override {
      auto d = p_->Feed(t);
      return {d.content, d.reasoning_content};
    }
    ChatDelta Finish() override {
      auto d = p_->Finish();
      for (const auto& c : p_->tool_calls()) calls_.push_back({c.id, c.name, c.arguments});
      return {d.content, d.reasoning_content};
    }
    const std::vector<ToolCall>& tool_calls() const override { return calls_; }

   private:
    std::unique_ptr<jinja::OutputParser> p_;
    std::vector<ToolCall> calls_;
  };
};

// Answers every request with `script` bytes (then EOS), one token per `step` on its thread.
// Prompts starting with "SCRIPT:" answer with the rest of the prompt instead.
class FakeEngine : public runtime::Engine {
 public:
  std::string script = "Hello world! The answer is 42. STOP tokens follow.";
  std::atomic<std::chrono::milliseconds> step{std::chrono::milliseconds(1)};

  FakeEngine() {
    info_.max_model_len = 256;
    info_.vocab_size = kFakeVocab;
    info_.eos_token_ids = {kFakeEos};
    info_.default_sampling.temperature = 0.0f;
    opts_.max_waiting = 64;
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeEngine() override { Shutdown(); }

  Result<uint64_t> Submit(runtime::GenerateRequest r, runtime::UpdateCallback cb) override {
    if (r.prompt.empty()) return InvalidArgument("empty prompt");
    if (int(r.prompt.size()) + r.max_new_tokens > info_.max_model_len) {
      return OutOfRange("prompt (", r.prompt.size(), " tokens) + max_tokens exceeds ",
                        info_.max_model_len);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (int(seqs_.size()) >= max_waiting.load()) {
      return MakeError(ErrorCode::kResourceExhausted, "queue full");
    }
    uint64_t id = ++next_id_;
    Seq s;
    s.req = std::move(r);
    s.cb = std::move(cb);
    std::string prompt(s.req.prompt.begin(), s.req.prompt.end());
    s.out = prompt.rfind("SCRIPT:", 0) == 0 ? prompt.substr(7) : script;
    seqs_[id] = std::move(s);
    last_sampling = seqs_[id].req.sampling;
    last_adapter = seqs_[id].req.adapter;
    cv_.notify_all();
    return id;
  }
  void Abort(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_.push_back(id);
    cv_.notify_all();
  }
  runtime::EngineStats Stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    runtime::EngineStats s;
    s.running = int(seqs_.size());
    s.kv_blocks_total = 100;
    for (const auto& [id, q] : seqs_) s.kv_blocks_used += 1 + (q.req.prompt.size() + q.pos) / 16;
    return s;
  }
  const runtime::EngineOptions& options() const override { return opts_; }
  const runtime::ModelInfo& model_info() const override { return info_; }
  void Shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      stop_ = true;
      cv_.notify_all();
    }
    thread_.join();
  }
  // A one-level adapter registry: enough to test routing by `model` and the load/unload routes.
  Status LoadAdapter(const std::string& name, const std::string& path, bool replace) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (name.empty()) return InvalidArgument("empty adapter name");
    if (path.find("missing") != std::string::npos) return NotFound("no adapter at ", path);
    for (auto& a : adapters_) {
      if (a.name == name && !replace) return InvalidArgument("adapter ", name, " exists");
    }
    adapters_.push_back({.name = name,
                         .path = path,
                         .format = "peft",
                         .max_rank = 8,
                         .bytes = 0,
                         .resident = true,
                         .in_flight = 0,
                         .generation = 1});
    return OkStatus();
  }
  Status UnloadAdapter(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < adapters_.size(); ++i) {
      if (adapters_[i].name == name) {
        adapters_.erase(adapters_.begin() + i);
        return OkStatus();
      }
    }
    return NotFound("no adapter ", name);
  }
  std::vector<runtime::AdapterInfo> ListAdapters() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return adapters_;
  }
  std::string last_adapter;

  runtime::SamplingParams last_sampling;
  std::atomic<int> max_waiting{64};  // Submit refuses (kResourceExhausted) beyond this

 private:
  struct Seq {
    runtime::GenerateRequest req;
    runtime::UpdateCallback cb;
    std::string out;
    size_t pos = 0;
  };
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !seqs_.empty(); });
      // One "step" per token: release the lock while pretending to compute.
      lock.unlock();
      std::this_thread::sleep_for(step.load());
      lock.lock();
      if (stop_) {
        for (auto& [id, s] : seqs_) Finish(id, s, runtime::FinishReason::kAbort, {});
        seqs_.clear();
        return;
      }
      for (uint64_t id : aborted_) {
        auto it = seqs_.find(id);
        if (it == seqs_.end()) continue;
        Finish(id, it->second, runtime::FinishReason::kAbort, {});
        seqs_.erase(it);
      }
      aborted_.clear();
      for (auto it = seqs_.begin(); it != seqs_.end();) {
        Seq& s = it->second;
        int32_t tok = s.pos < s.out.size() ? (unsigned char)s.out[s.pos] : kFakeEos;
        s.pos++;
        runtime::TokenOutput t{tok, -0.25f, {}};
        for (int k = 0; k < s.req.top_logprobs; ++k) t.top.push_back({tok + k, -0.25f - k});
        bool eos = tok == kFakeEos && !s.req.ignore_eos;
        bool stop_id = std::find(s.req.stop_token_ids.begin(), s.req.stop_token_ids.end(), tok) !=
                       s.req.stop_token_ids.end();
        bool length = int(s.pos) >= s.req.max_new_tokens;
        if (eos || stop_id || length) {
          Finish(it->first, s,
                 length && !eos && !stop_id ? runtime::FinishReason::kLength
                                            : runtime::FinishReason::kStop,
                 {t});
          it = seqs_.erase(it);
        } else {
          runtime::RequestUpdate u;
          u.request_id = it->first;
          u.tokens = {t};
          u.prompt_tokens = int(s.req.prompt.size());
          u.generated_tokens = int(s.pos);
          s.cb(std::move(u));
          ++it;
        }
      }
    }
  }
  void Finish(uint64_t id, Seq& s, runtime::FinishReason r, std::vector<runtime::TokenOutput> t) {
    runtime::RequestUpdate u;
    u.request_id = id;
    u.tokens = std::move(t);
    u.finished = true;
    u.reason = r;
    u.prompt_tokens = int(s.req.prompt.size());
    u.generated_tokens = int(s.pos);
    s.cb(std::move(u));
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Seq> seqs_;
  std::vector<uint64_t> aborted_;
  std::vector<runtime::AdapterInfo> adapters_;
  uint64_t next_id_ = 0;
  bool stop_ = false;
  runtime::EngineOptions opts_;
  runtime::ModelInfo info_;
  std::thread thread_;
};

}  // namespace petrel::server::testing
