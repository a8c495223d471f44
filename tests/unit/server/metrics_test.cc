#include "server/metrics.h"

#include <gtest/gtest.h>

namespace petrel::server {
namespace {

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Histogram h({0.1, 1.0});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  std::string out;
  h.Render("x_seconds{model_name=\"m\"}", "help", &out);
  EXPECT_NE(out.find("x_seconds_bucket{model_name=\"m\",le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("x_seconds_bucket{model_name=\"m\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("x_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("x_seconds_count{model_name=\"m\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("# TYPE x_seconds histogram"), std::string::npos);
}

TEST(MetricsTest, RenderHasEngineAndServerSeries) {
  Metrics m;
  m.ObserveTtft(0.01);
  m.CountRequest("stop");
  m.CountHttp(200);
  runtime::EngineStats s;
  s.running = 3;
  s.kv_blocks_total = 100;
  s.kv_blocks_used = 25;
  std::string out = m.Render(s, "tiny");
  EXPECT_NE(out.find("petrel:num_requests_running{model_name=\"tiny\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("petrel:kv_cache_usage_perc{model_name=\"tiny\"} 0.25\n"), std::string::npos);
  EXPECT_NE(out.find("petrel:kv_cache_blocks_used{model_name=\"tiny\"} 25\n"), std::string::npos);
  EXPECT_NE(out.find("petrel:time_to_first_token_seconds_count{model_name=\"tiny\"} 1"),
            std::string::npos);
  EXPECT_NE(out.find("finished_reason=\"stop\"} 1"), std::string::npos);
  EXPECT_NE(out.find("petrel:http_requests_total{status=\"200\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace petrel::server
