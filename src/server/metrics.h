// Prometheus metrics measured in the server: latency histograms (time to first token, inter-token
// latency, end-to-end latency) and request counters, rendered together with the engine's own
// gauges and counters (running/waiting, KV usage, prefix cache, token totals) in text format 0.0.4.
// Thread-safe: observations come from the HTTP threads, rendering from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace petrel::server {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // Appends `name_bucket{le=...}`, `name_sum`, `name_count` lines.
  void Render(const std::string& name, const std::string& help, std::string* out) const;
  uint64_t count() const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last = +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  void ObserveTtft(double seconds) { ttft_.Observe(seconds); }
  void ObserveInterToken(double seconds) { itl_.Observe(seconds); }
  void ObserveE2e(double seconds) { e2e_.Observe(seconds); }
  // A finished request by finish reason ("stop", "length", "abort", "error", ...).
  void CountRequest(const std::string& finish_reason);
  // An HTTP response by status code.
  void CountHttp(int status);
  // Clients that went away before their request finished.
  void CountDisconnect();

  // The full exposition: server histograms and counters, plus `stats` from the engine.
  // `model_name` labels every series (vLLM style `model_name="..."`).
  std::string Render(const runtime::EngineStats& stats, const std::string& model_name) const;

 private:
  Histogram ttft_, itl_, e2e_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> finished_;  // by finish reason
  std::map<int, uint64_t> http_;              // by status
  uint64_t disconnects_ = 0;
};

}  // namespace petrel::server
