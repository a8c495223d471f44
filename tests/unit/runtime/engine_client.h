// Test helpers for the engine tests: a client that collects a request's streamed tokens and its
// final update, and a greedy request.
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <utility>
#include <vector>

#include "runtime/engine.h"

namespace petrel::runtime::testing_client {

struct Collected {
  std::vector<int32_t> tokens;
  RequestUpdate last;
};

class Client {
 public:
  explicit Client(Engine& e) : e_(e) {}
  // Submits and returns a future for the whole result.
  std::future<Collected> Start(GenerateRequest req, uint64_t* id_out = nullptr) {
    auto state = std::make_shared<std::pair<std::promise<Collected>, Collected>>();
    auto fut = state->first.get_future();
    auto r = e_.Submit(std::move(req), [state](RequestUpdate u) {
      for (auto& t : u.tokens) state->second.tokens.push_back(t.token);
      if (u.finished) {
        state->second.last = u;
        state->first.set_value(state->second);
      }
    });
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().ToString());
    if (id_out && r.ok()) *id_out = *r;
    return fut;
  }

 private:
  Engine& e_;
};

inline GenerateRequest Greedy(std::vector<int32_t> prompt, int n) {
  GenerateRequest r;
  r.prompt = std::move(prompt);
  r.max_new_tokens = n;
  r.sampling.temperature = 0;
  r.ignore_eos = true;
  return r;
}

}  // namespace petrel::runtime::testing_client
