#include "server/stop_matcher.h"

#include <algorithm>

namespace petrel::server {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (auto& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

StopMatcher::Output StopMatcher::Feed(std::string_view piece) {
  Output out;
  if (stopped_) return out;
  if (stops_.empty()) {
    out.text = std::string(piece);
    return out;
  }
  // The held text is a proper prefix of a stop string, so a match may start inside it: search the
  // held text and the new piece together.
  std::string buf = std::move(held_);
  held_.clear();
  buf.append(piece);

  // Earliest match wins; among matches at the same position the longest one (so "ab" beats "a"
  // only when both start at the same byte — either way the text before it is the same).
  size_t best = std::string::npos;
  const std::string* best_stop = nullptr;
  for (const auto& s : stops_) {
    size_t pos = buf.find(s);
    if (pos != std::string::npos && (pos < best || (pos == best && s.size() > best_stop->size()))) {
      best = pos;
      best_stop = &s;
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    out.stopped = true;
    out.matched = *best_stop;
    out.text = buf.substr(0, best);
    return out;
  }

  // No match: hold back the longest suffix of `buf` that is a proper prefix of some stop string.
  // Stop strings are valid UTF-8 and start on a character boundary, so the cut never splits a
  // multi-byte character.
  size_t hold = 0;
  for (const auto& s : stops_) {
    size_t max_k = std::min(buf.size(), s.size() - 1);
    for (size_t k = max_k; k > hold; --k) {
      if (std::string_view(buf).substr(buf.size() - k) == std::string_view(s).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  out.text = buf.substr(0, buf.size() - hold);
  held_ = buf.substr(buf.size() - hold);
  return out;
}

std::string StopMatcher::Flush() {
  if (stopped_) return {};
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

}  // namespace petrel::server
