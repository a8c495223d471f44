// The engine's LoRA registry on the qwen3-tiny fixture: requests with different adapters batched
// together get what they get alone; adapters loaded, unloaded and replaced while requests stream
// never fail or mix up a request; --max-loras evicts idle adapters (LRU) and refuses when all are
// busy; a reloaded name with other weights never reuses the old prefix-cache blocks.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "core/log.h"
#include "model/model.h"
#include "runtime/engine.h"

namespace petrel::runtime {
namespace {

const std::string kFx = PETREL_FIXTURES;
const std::string kAll = kFx + "/qwen3-tiny-lora-all";
const std::string kQv = kFx + "/qwen3-tiny-lora-qv";
const std::string kMlx = kFx + "/qwen3-tiny-lora-all-mlx";

struct Outcome {
  std::vector<int32_t> tokens;
  RequestUpdate last;
};

// Submits; the future resolves with the whole result. Returns the Submit error, if any.
Result<std::future<Outcome>> Start(Engine& e, GenerateRequest req,
                                   std::function<void(const RequestUpdate&)> on_update = nullptr) {
  auto state = std::make_shared<std::pair<std::promise<Outcome>, Outcome>>();
  auto fut = state->first.get_future();
  auto r = e.Submit(std::move(req), [state, on_update](RequestUpdate u) {
    if (on_update) on_update(u);
    for (auto& t : u.tokens) state->second.tokens.push_back(t.token);
    if (u.finished) {
      state->second.last = u;
      state->first.set_value(state->second);
    }
  });
  if (!r.ok()) return r.error();
  return fut;
}

std::unique_ptr<Engine> MakeEngine(EngineOptions o) {
  auto m = model::LoadModel(kFx + "/qwen3-tiny", model::LoadOptions{.n_threads = 2});
  EXPECT_TRUE(m.ok());
  auto e = Engine::Create(std::move(m).value(), o);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().ToString());
  return std::move(e).value();
}

GenerateRequest Greedy(std::vector<int32_t> prompt, int n, std::string adapter) {
  GenerateRequest r;
  r.prompt = std::move(prompt);
  r.max_new_tokens = n;
  r.sampling.temperature = 0;
  r.ignore_eos = true;
  r.adapter = std::move(adapter);
  return r;
}

std::vector<int32_t> Prompt(int i, int len) {
  std::vector<int32_t> ids;
  for (int j = 0; j < len; ++j) ids.push_back((i * 7919 + j * 104729 + 5) % 150000);
  return ids;
}

// Greedy outputs of prompts 0..n-1 for "" (base), "all" and "qv", each request alone.
std::map<std::string, std::vector<std::vector<int32_t>>> AloneOutputs(int n, int tokens) {
  auto e = MakeEngine(EngineOptions{.max_num_seqs = 1});
  EXPECT_TRUE(e->LoadAdapter("all", kAll).ok());
  EXPECT_TRUE(e->LoadAdapter("qv", kQv).ok());
  std::map<std::string, std::vector<std::vector<int32_t>>> out;
  for (const std::string a : {"", "all", "qv"})
    for (int i = 0; i < n; ++i) out[a].push_back(Start(*e, Greedy(Prompt(i, 5 + 3 * i), tokens, a))->get().tokens);
  return out;
}

TEST(LoraEngine, RegistryBasics) {
  auto e = MakeEngine(EngineOptions{});
  EXPECT_EQ(e->Submit(Greedy(Prompt(0, 4), 2, "all"), nullptr).error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(e->LoadAdapter("all", kAll).ok());
  ASSERT_TRUE(e->LoadAdapter("mlx", kMlx).ok());
  EXPECT_EQ(e->LoadAdapter("all", kQv).error().code, ErrorCode::kInvalidArgument);  // name taken
  EXPECT_EQ(e->LoadAdapter("", kQv).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e->LoadAdapter("x", kFx + "/qwen3-tiny").error().code, ErrorCode::kNotFound);  // no adapter_config.json
  auto list = e->ListAdapters();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "all");
  EXPECT_EQ(list[0].format, "peft");
  EXPECT_EQ(list[0].max_rank, 8);
  EXPECT_TRUE(list[0].resident);
  EXPECT_EQ(list[1].format, "mlx");
  // The PEFT and MLX layouts of one adapter give the same tokens.
  auto a = Start(*e, Greedy(Prompt(1, 9), 8, "all"));
  auto b = Start(*e, Greedy(Prompt(1, 9), 8, "mlx"));
  EXPECT_EQ(a->get().tokens, b->get().tokens);
  ASSERT_TRUE(e->UnloadAdapter("all").ok());
  EXPECT_EQ(e->UnloadAdapter("all").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(e->Submit(Greedy(Prompt(0, 4), 2, "all"), nullptr).error().code, ErrorCode::kNotFound);
}

TEST(LoraEngine, MixedAdaptersBatchedEqualAlone) {
  const int n = 6, tokens = 10;
  auto alone = AloneOutputs(n, tokens);
  EXPECT_NE(alone[""][0], alone["all"][0]);
  EXPECT_NE(alone["all"][0], alone["qv"][0]);
  auto e = MakeEngine(EngineOptions{.max_num_batched_tokens = 24});  // chunked prefill too
  ASSERT_TRUE(e->LoadAdapter("all", kAll).ok());
  ASSERT_TRUE(e->LoadAdapter("qv", kQv).ok());
  std::vector<std::pair<std::string, int>> which;
  std::vector<std::future<Outcome>> futs;
  for (int i = 0; i < n; ++i)
    for (const std::string a : {"qv", "", "all"}) {
      which.push_back({a, i});
      futs.push_back(std::move(Start(*e, Greedy(Prompt(i, 5 + 3 * i), tokens, a)).value()));
    }
  for (size_t k = 0; k < futs.size(); ++k) {
    Outcome o = futs[k].get();
    EXPECT_EQ(o.last.reason, FinishReason::kLength);
    EXPECT_EQ(o.tokens, alone[which[k].first][which[k].second])
        << "adapter \"" << which[k].first << "\" prompt " << which[k].second;
  }
}

TEST(LoraEngine, HotLoadUnloadReplaceUnderLoad) {
  const int n = 4, tokens = 12;
  auto alone = AloneOutputs(n, tokens);
  SetLogLevel(LogLevel::kWarn);  // thousands of load / unload lines otherwise
  auto e = MakeEngine(EngineOptions{.max_num_seqs = 16, .max_loras = 8});
  ASSERT_TRUE(e->LoadAdapter("all", kAll).ok());
  ASSERT_TRUE(e->LoadAdapter("qv", kQv).ok());
  ASSERT_TRUE(e->LoadAdapter("swap", kAll).ok());
  // A churn thread: "swap" flips between the two adapters' weights (replace), "qv" is unloaded and
  // loaded again, "extra" comes and goes.
  std::atomic<bool> stop{false};
  std::atomic<int> churns{0};
  std::thread churn([&] {
    for (int k = 0; !stop; ++k) {
      EXPECT_TRUE(e->LoadAdapter("swap", k % 2 ? kAll : kQv, /*replace=*/true).ok());
      if (k % 3 == 0) {
        EXPECT_TRUE(e->UnloadAdapter("qv").ok());
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        EXPECT_TRUE(e->LoadAdapter("qv", kQv).ok());
      }
      EXPECT_TRUE(e->LoadAdapter("extra", kMlx).ok());
      EXPECT_TRUE(e->UnloadAdapter("extra").ok());
      churns++;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  struct Sent {
    std::string adapter;
    int prompt;
    std::future<Outcome> fut;
  };
  std::vector<Sent> sent;
  int refused = 0;
  std::mt19937 rng(7);
  const std::string names[] = {"", "all", "qv", "swap"};
  for (int round = 0; round < 40; ++round) {
    const std::string a = names[rng() % 4];
    const int i = (int)(rng() % n);
    auto r = Start(*e, Greedy(Prompt(i, 5 + 3 * i), tokens, a));
    if (!r.ok()) {  // only "qv" may be momentarily unloaded
      EXPECT_EQ(a, "qv") << r.error().ToString();
      EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
      ++refused;
      continue;
    }
    sent.push_back({a, i, std::move(r).value()});
    if (round % 8 == 7) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& s : sent) {
    Outcome o = s.fut.get();
    EXPECT_EQ(o.last.reason, FinishReason::kLength) << o.last.error;
    if (s.adapter == "swap") {  // either load of "swap", entirely (never a mix)
      EXPECT_TRUE(o.tokens == alone["all"][s.prompt] || o.tokens == alone["qv"][s.prompt])
          << "prompt " << s.prompt;
    } else {
      EXPECT_EQ(o.tokens, alone[s.adapter][s.prompt]) << "adapter \"" << s.adapter << "\" prompt " << s.prompt;
    }
  }
  stop = true;
  churn.join();
  EXPECT_GT(churns.load(), 0);
  std::printf("%zu requests finished, %d refused while \"qv\" was unloaded, %d churn rounds\n", sent.size(),
              refused, churns.load());

  // Unload while a request is running: it finishes with the weights it started with.
  std::promise<void> first_token, release;
  auto released = release.get_future().share();
  std::atomic<bool> once{false};
  auto running = Start(*e, Greedy(Prompt(2, 11), tokens, "all"), [&](const RequestUpdate& u) {
    if (!u.tokens.empty() && !once.exchange(true)) {
      first_token.set_value();
      released.wait();  // holds the engine thread: the request is in flight
    }
  });
  ASSERT_TRUE(running.ok());
  first_token.get_future().wait();
  ASSERT_TRUE(e->UnloadAdapter("all").ok());
  auto list = e->ListAdapters();
  for (const auto& info : list) EXPECT_NE(info.name, "all");
  EXPECT_EQ(e->Submit(Greedy(Prompt(0, 4), 2, "all"), nullptr).error().code, ErrorCode::kNotFound);
  release.set_value();
  Outcome o = running->get();
  EXPECT_EQ(o.last.reason, FinishReason::kLength);
  EXPECT_EQ(o.tokens, alone["all"][2]);
}

TEST(LoraEngine, MaxLorasEvictsIdleAndRefusesWhenAllBusy) {
  const int tokens = 6;
  auto alone = AloneOutputs(2, tokens);
  auto e = MakeEngine(EngineOptions{.max_loras = 1});
  ASSERT_TRUE(e->LoadAdapter("all", kAll).ok());
  ASSERT_TRUE(e->LoadAdapter("qv", kQv).ok());  // evicts idle "all"
  auto list = e->ListAdapters();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_FALSE(list[0].resident);  // "all"
  EXPECT_TRUE(list[1].resident);   // "qv"
  const uint64_t gen_before = list[0].generation;
  // Using an evicted adapter reloads it (evicting "qv").
  EXPECT_EQ(Start(*e, Greedy(Prompt(1, 8), tokens, "all"))->get().tokens, alone["all"][1]);
  list = e->ListAdapters();
  EXPECT_TRUE(list[0].resident);
  EXPECT_FALSE(list[1].resident);
  EXPECT_NE(list[0].generation, gen_before);
  // While "all" is in use, neither loading nor reloading another adapter can make room.
  std::promise<void> first_token, release;
  auto released = release.get_future().share();
  std::atomic<bool> once{false};
  auto running = Start(*e, Greedy(Prompt(0, 5), tokens, "all"), [&](const RequestUpdate& u) {
    if (!u.tokens.empty() && !once.exchange(true)) {
      first_token.set_value();
      released.wait();
    }
  });
  ASSERT_TRUE(running.ok());
  first_token.get_future().wait();
  auto st = e->LoadAdapter("mlx", kMlx);
  EXPECT_EQ(st.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(st.error().message.find("--max-loras 1"), std::string::npos) << st.error().message;
  EXPECT_EQ(e->Submit(Greedy(Prompt(0, 4), 2, "qv"), nullptr).error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(e->ListAdapters()[0].in_flight, 1);
  release.set_value();
  EXPECT_EQ(running->get().tokens, alone["all"][0]);
  // Idle again: "qv" can come back.
  EXPECT_EQ(Start(*e, Greedy(Prompt(1, 8), tokens, "qv"))->get().tokens, alone["qv"][1]);
}

TEST(LoraEngine, ReloadedNameNeverReusesStalePrefixBlocks) {
  auto e = MakeEngine(EngineOptions{.block_size = 16});
  const auto prompt = Prompt(3, 50);  // three full blocks
  ASSERT_TRUE(e->LoadAdapter("x", kAll).ok());
  Outcome first = Start(*e, Greedy(prompt, 6, "x"))->get();
  Outcome again = Start(*e, Greedy(prompt, 6, "x"))->get();
  EXPECT_EQ(again.last.cached_prompt_tokens, 48);  // same load: the prefix cache is used
  EXPECT_EQ(again.tokens, first.tokens);
  ASSERT_TRUE(e->LoadAdapter("x", kQv, /*replace=*/true).ok());
  Outcome replaced = Start(*e, Greedy(prompt, 6, "x"))->get();
  EXPECT_EQ(replaced.last.cached_prompt_tokens, 0);
  ASSERT_TRUE(e->LoadAdapter("y", kQv).ok());
  Outcome fresh_qv = Start(*e, Greedy(prompt, 6, "y"))->get();
  EXPECT_EQ(replaced.tokens, fresh_qv.tokens);
  EXPECT_NE(replaced.tokens, first.tokens);
  // And the base model never sees adapter blocks.
  Outcome base = Start(*e, Greedy(prompt, 6, ""))->get();
  EXPECT_EQ(base.last.cached_prompt_tokens, 0);
}

}  // namespace
}  // namespace petrel::runtime
