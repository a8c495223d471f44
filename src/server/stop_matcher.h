// Stop strings on a text stream. Generated text arrives in pieces; a stop string may straddle
// pieces, so text that could be the beginning of a stop string is held back until it is known not
// to be one. Nothing is ever emitted and then retracted: what Feed() returns is final. The matched
// stop string itself and everything after it are dropped (OpenAI semantics).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace petrel::server {

class StopMatcher {
 public:
  // Empty strings in `stops` are ignored. With no stop strings, Feed() passes text through.
  explicit StopMatcher(std::vector<std::string> stops);

  struct Output {
    std::string text;      // safe to send now
    bool stopped = false;  // a stop string matched; `text` ends right before it
    std::string matched;   // which stop string (when stopped)
  };

  // Appends `piece`; returns the text that can no longer become part of a stop string.
  // After a match, further calls return nothing.
  Output Feed(std::string_view piece);
  // End of generation: returns the held-back text (it did not turn into a stop string).
  std::string Flush();

  bool stopped() const { return stopped_; }
  // Bytes currently held back (for tests and logprob bookkeeping).
  size_t held_bytes() const { return held_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;  // a suffix of the stream that is a proper prefix of some stop string
  bool stopped_ = false;
};

}  // namespace petrel::server
