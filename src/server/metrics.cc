#include "server/metrics.h"

#include <cstdio>

namespace petrel::server {

namespace {
std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}
// Prometheus label values escape backslash, quote and newline.
std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i]++;
  sum_ += v;
  count_++;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

void Histogram::Render(const std::string& name, const std::string& help, std::string* out) const {
  // `name` may carry labels after a '{': split them so `le` can be added.
  std::string base = name, labels;
  if (size_t p = name.find('{'); p != std::string::npos) {
    base = name.substr(0, p);
    labels = name.substr(p + 1, name.size() - p - 2);  // without braces
  }
  std::string sep = labels.empty() ? "" : ",";
  std::lock_guard<std::mutex> lock(mu_);
  *out += "# HELP " + base + " " + help + "\n# TYPE " + base + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    *out += base + "_bucket{" + labels + sep + "le=\"" + Num(bounds_[i]) + "\"} " +
            std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  *out += base + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(cum) + "\n";
  std::string lbl = labels.empty() ? "" : "{" + labels + "}";
  *out += base + "_sum" + lbl + " " + Num(sum_) + "\n";
  *out += base + "_count" + lbl + " " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
             10.0, 20.0, 40.0, 80.0}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
            0.075, 0.1,    0.15,  0.2,  0.3,   0.4,  0.5,   0.75, 1.0,  2.5}),
      e2e_({0.01, 0.05, 0.1,  0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,  5.0,
            10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0}) {}

void Metrics::CountRequest(const std::string& finish_reason) {
  std::lock_guard<std::mutex> lock(mu_);
  finished_[finish_reason]++;
}
void Metrics::CountHttp(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  http_[status]++;
}
void Metrics::CountDisconnect() {
  std::lock_guard<std::mutex> lock(mu_);
  disconnects_++;
}

std::string Metrics::Render(const runtime::EngineStats& s, const std::string& model_name) const {
  const std::string l = "{model_name=\"" + Escape(model_name) + "\"}";
  std::string out;
  auto gauge = [&](const char* name, const char* help, double v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + l +
           " " + Num(v) + "\n";
  };
  auto counter = [&](const char* name, const char* help, double v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           l + " " + Num(v) + "\n";
  };
  gauge("petrel:num_requests_running", "Requests in the running batch.", s.running);
  gauge("petrel:num_requests_waiting", "Requests waiting to be scheduled.", s.waiting);
  gauge("petrel:kv_cache_usage_perc", "Fraction of KV-cache blocks in use (0..1).",
        s.kv_blocks_total > 0 ? double(s.kv_blocks_used) / double(s.kv_blocks_total) : 0.0);
  gauge("petrel:kv_cache_blocks_used", "KV-cache blocks in use.", double(s.kv_blocks_used));
  gauge("petrel:kv_cache_blocks_total", "KV-cache blocks in the pool.", double(s.kv_blocks_total));
  counter("petrel:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
          double(s.prefix_cache_queries));
  counter("petrel:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.",
          double(s.prefix_cache_hits));
  counter("petrel:prompt_tokens_total", "Prompt tokens processed.", double(s.prompt_tokens_total));
  counter("petrel:generation_tokens_total", "Tokens generated.", double(s.generation_tokens_total));
  counter("petrel:num_preemptions_total", "Sequences preempted for lack of KV blocks.",
          double(s.preemptions_total));
  counter("petrel:pipelined_decode_steps_total",
          "Decode steps launched before the previous step's tokens reached the host.",
          double(s.pipelined_steps_total));
  ttft_.Render("petrel:time_to_first_token_seconds" + l,
               "Time from request arrival to its first token.", &out);
  itl_.Render("petrel:inter_token_latency_seconds" + l, "Time between consecutive tokens.", &out);
  e2e_.Render("petrel:e2e_request_latency_seconds" + l,
              "Time from request arrival to its last token.", &out);
  std::lock_guard<std::mutex> lock(mu_);
  out +=
      "# HELP petrel:request_success_total Finished requests by finish reason.\n"
      "# TYPE petrel:request_success_total counter\n";
  for (const auto& [reason, n] : finished_) {
    out += "petrel:request_success_total{model_name=\"" + Escape(model_name) +
           "\",finished_reason=\"" + Escape(reason) + "\"} " + std::to_string(n) + "\n";
  }
  out +=
      "# HELP petrel:client_disconnects_total Requests cancelled because the client left.\n"
      "# TYPE petrel:client_disconnects_total counter\n"
      "petrel:client_disconnects_total" +
      l + " " + std::to_string(disconnects_) + "\n";
  out +=
      "# HELP petrel:http_requests_total HTTP responses by status code.\n"
      "# TYPE petrel:http_requests_total counter\n";
  for (const auto& [status, n] : http_) {
    out += "petrel:http_requests_total{status=\"" + std::to_string(status) + "\"} " +
           std::to_string(n) + "\n";
  }
  return out;
}

}  // namespace petrel::server
