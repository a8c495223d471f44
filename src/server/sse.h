// Server-sent events framing for streamed completions: each event is `data: <json>\n\n` and the
// stream ends with `data: [DONE]\n\n` (OpenAI convention). The parser is for tests and the load
// tool's C++ counterpart; clients in the wild use their own.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace petrel::server {

// One event carrying `data`. A payload with newlines becomes several `data:` lines, which SSE
// clients join back with '\n'.
std::string SseEvent(std::string_view data);
// The terminating event.
std::string SseDone();

// Incremental parser: feed arbitrary byte pieces, get complete events' data back.
class SseParser {
 public:
  std::vector<std::string> Feed(std::string_view bytes);

 private:
  std::string buf_;
  std::string data_;  // data lines of the event being read
  bool has_data_ = false;
};

}  // namespace petrel::server
