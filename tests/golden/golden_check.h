// Checks of petrel's logits against the transformers / PEFT references in tests/fixtures/refs.json
// (base model, LoRA adapters, merged models; used by tests/golden/model and tests/golden/lora): top-k logits,
// logsumexp and probe logits at every prompt position, then greedy steps whose reference margin
// exceeds kMarginTol must pick the reference token.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "model/lora/adapter.h"
#include "model/model.h"
#include "model/sequence_runner.h"

namespace petrel::model::golden {

constexpr float kLogitTol = 2e-3f;   // max |Δ| on top-k logits, logsumexp, probe logits
constexpr float kMarginTol = 1e-2f;  // greedy steps with a smaller reference margin are ambiguous

// The bounds above, replaceable (the CUDA golden tests pass their bf16 bounds), and the KV cache
// element type the check runs with (the int8 KV golden test passes kI8 with its bounds).
struct Tolerance {
  float logit = kLogitTol;
  float margin = kMarginTol;
  DType kv_dtype = DType::kF32;
};

inline std::vector<int32_t> IdsOf(const Json& j) { return j.get<std::vector<int32_t>>(); }

inline Json LoadRefs(const std::string& path) {
  auto j = ReadJsonFile(path);
  EXPECT_TRUE(j.ok()) << j.error().ToString();
  return j.ok() ? *j : Json();
}

// One sequence on its own KV cache, optionally with a LoRA adapter.
struct Runner {
  Model* model;
  const lora::LoraAdapter* adapter = nullptr;
  std::unique_ptr<kernels::KvCache> cache;
  std::vector<int32_t> table;
  static constexpr int kBlock = 16;

  Runner(Model* m, const lora::LoraAdapter* a, int64_t max_tokens = 512, DType kv_dtype = DType::kF32)
      : model(m), adapter(a) {
    const int64_t n_blocks = (max_tokens + kBlock - 1) / kBlock;
    cache = model->CreateKvCache(n_blocks, kBlock, kv_dtype);
    table.resize(n_blocks);
    std::iota(table.begin(), table.end(), 0);
  }

  // Runs `ids` at positions start.. (cache holds 0..start-1); logits of every new row.
  std::vector<float> Run(const std::vector<int32_t>& ids, int start) {
    ForwardBatch b;
    const int n = (int)ids.size();
    for (int i = 0; i < n; ++i) {
      const int pos = start + i;
      b.tokens.push_back(ids[i]);
      b.positions.push_back(pos);
      b.slots.push_back((int64_t)table[pos / kBlock] * kBlock + pos % kBlock);
      b.logit_rows.push_back(i);
    }
    b.seqs.push_back(kernels::AttentionSeq{0, n, start + n, table});
    if (adapter) b.seq_adapters.push_back(adapter);
    std::vector<float> logits((size_t)n * model->config().vocab_size);
    model->Forward(b, *cache, logits.data());
    return logits;
  }
};

// Checks one row against {top_ids, top_logits, logsumexp, probe_logits}; returns the worst |Δ|.
inline float CheckRow(const float* row, int64_t vocab, const Json& want,
                      const std::vector<int32_t>& probe, const std::string& what,
                      const Tolerance& tol = {}) {
  float worst = 0;
  const float mx = *std::max_element(row, row + vocab);
  double s = 0;
  for (int64_t i = 0; i < vocab; ++i) s += std::exp((double)row[i] - mx);
  const float lse = mx + (float)std::log(s);
  worst = std::max(worst, std::abs(lse - want["logsumexp"].get<float>()));
  EXPECT_NEAR(lse, want["logsumexp"].get<float>(), tol.logit) << what << " logsumexp";
  const auto top_ids = IdsOf(want["top_ids"]);
  const auto top_logits = want["top_logits"].get<std::vector<float>>();
  for (size_t i = 0; i < top_ids.size(); ++i) {
    worst = std::max(worst, std::abs(row[top_ids[i]] - top_logits[i]));
    EXPECT_NEAR(row[top_ids[i]], top_logits[i], tol.logit) << what << " top " << i;
  }
  if (top_logits.size() > 1 && top_logits[0] - top_logits[1] > 2 * tol.logit) {
    EXPECT_EQ(std::max_element(row, row + vocab) - row, top_ids[0]) << what << " argmax";
  }
  const auto probe_logits = want["probe_logits"].get<std::vector<float>>();
  for (size_t i = 0; i < probe.size(); ++i) {
    worst = std::max(worst, std::abs(row[probe[i]] - probe_logits[i]));
    EXPECT_NEAR(row[probe[i]], probe_logits[i], tol.logit) << what << " probe " << i;
  }
  return worst;
}

// Prompt logits at every position, then the greedy steps.
inline float CheckCase(Model* model, const lora::LoraAdapter* adapter, const Json& ref,
                       const std::vector<int32_t>& probe, const std::string& what,
                       const Tolerance& tol = {}) {
  Runner r(model, adapter, 512, tol.kv_dtype);
  const int64_t vocab = model->config().vocab_size;
  const std::vector<int32_t> ids = IdsOf(ref["ids"]);
  auto logits = r.Run(ids, 0);
  const auto& positions = ref["positions"];
  EXPECT_EQ(logits.size(), positions.size() * vocab) << what;
  float worst = 0;
  for (size_t p = 0; p < positions.size(); ++p)
    worst = std::max(worst, CheckRow(logits.data() + p * vocab, vocab, positions[p], probe,
                                     what + " pos " + std::to_string(p), tol));
  if (!ref.contains("greedy")) return worst;
  std::vector<float> last(logits.end() - vocab, logits.end());
  int pos = (int)ids.size();
  for (size_t step = 0; step < ref["greedy"].size(); ++step) {
    const Json& g = ref["greedy"][step];
    const std::string at = what + " greedy " + std::to_string(step);
    worst = std::max(worst, CheckRow(last.data(), vocab, g, probe, at, tol));
    const int32_t want = g["token"].get<int32_t>();
    const int32_t got = (int32_t)(std::max_element(last.begin(), last.end()) - last.begin());
    if (g["margin"].get<float>() > tol.margin) {
      EXPECT_EQ(got, want) << at;
      if (got != want) break;
    } else if (got != want) {
      break;  // an ambiguous step went the other way: the rest of the reference no longer applies
    }
    last = r.Run({want}, pos++);
  }
  return worst;
}

// Every case of `cases`; returns the worst |Δ| over all of them.
inline float CheckCases(Model* model, const lora::LoraAdapter* adapter, const Json& cases,
                        const std::vector<int32_t>& probe, const std::string& label,
                        const Tolerance& tol = {}) {
  float worst = 0;
  for (const auto& c : cases)
    worst = std::max(worst, CheckCase(model, adapter, c, probe, label + "/" + c["name"].get<std::string>(), tol));
  std::printf("%s: max |logit delta| = %g\n", label.c_str(), worst);
  return worst;
}

// Appends one sequence's next rows to `b`: `ids` at positions len, len + 1, ... (len advances),
// their KV slots from `table` (blocks of `block` tokens), the last row's logits wanted.
inline void AppendSeqRows(ForwardBatch& b, const std::vector<int32_t>& ids, int& len,
                          std::span<const int32_t> table, int block) {
  const int begin = (int)b.tokens.size();
  for (size_t i = 0; i < ids.size(); ++i) {
    const int pos = len + (int)i;
    b.tokens.push_back(ids[i]);
    b.positions.push_back(pos);
    b.slots.push_back((int64_t)table[pos / block] * block + pos % block);
  }
  len += (int)ids.size();
  b.seqs.push_back(kernels::AttentionSeq{begin, (int)ids.size(), len, table});
  b.logit_rows.push_back((int32_t)b.tokens.size() - 1);
}

// Pipelined greedy decoding (Model::LaunchArgMax / CollectArgMax, each step's tokens fed from
// the previous step's ids) must choose exactly the ids of step-by-step ForwardArgMax: the same
// computation, only the host's waiting moves. Two sequences of different lengths, `steps` steps
// each way in caches of their own; the sync run's ids are also checked to be each step's fed
// tokens (a pipelined run that fed stale or misplaced ids would diverge from it).
inline void CheckPipelinedGreedy(Model* model, DType kv, int steps, const std::string& label) {
  constexpr int kBs = 16;
  const std::vector<std::vector<int32_t>> prompts = {{9707, 11, 1879, 374},
                                                     {785, 6722, 315, 9625, 374, 12095, 13}};
  const std::vector<std::vector<int32_t>> tables = {{4, 1, 6}, {0, 5, 2}};
  auto run = [&](bool pipelined) {
    auto cache = model->CreateKvCache(8, kBs, kv);
    std::vector<int> len(2, 0);
    std::vector<int32_t> next(2);
    std::vector<std::vector<int32_t>> out(2);
    for (int step = 0; step <= steps; ++step) {
      ForwardBatch b;
      for (int s = 0; s < 2; ++s) {
        // Fed (pipelined, after the first decode step): the token's value is unused.
        const int32_t tok = pipelined && step > 1 ? -1 : next[s];
        AppendSeqRows(b, step == 0 ? prompts[s] : std::vector<int32_t>{tok}, len[s], tables[s], kBs);
      }
      if (!pipelined || step == 0) {
        model->ForwardArgMax(b, *cache, next.data());  // the prompts (and every sync step)
      } else {
        model->LaunchArgMax(b, *cache, /*tokens_from_last=*/step > 1);
        if (step > 1) model->CollectArgMax(next.data());  // the previous step's ids
      }
      if (!pipelined || step == 0 || step > 1)
        for (int s = 0; s < 2; ++s) out[s].push_back(next[s]);
    }
    if (pipelined) {
      model->CollectArgMax(next.data());
      for (int s = 0; s < 2; ++s) out[s].push_back(next[s]);
    }
    return out;
  };
  const auto want = run(false), got = run(true);
  for (int s = 0; s < 2; ++s) {
    ASSERT_EQ(want[s].size(), (size_t)steps + 1) << label;
    EXPECT_EQ(want[s], got[s]) << label << " sequence " << s;
  }
}

// SequenceRunner::GreedyDecode (pipelined, the argmax on the backend) against Append with the
// argmax of the returned logits on the host, step by step: the same ids.
inline void CheckRunnerGreedy(Model* model, const std::string& label) {
  const std::vector<int32_t> prompt = {785, 6722, 315, 9625, 374};
  constexpr int kSteps = 16;
  SequenceRunner a(*model, 64, DType::kF32), b(*model, 64, DType::kF32);
  std::vector<float> logits = a.Append(prompt, false);
  b.Append(prompt, false);
  int32_t next = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const int32_t first = next;
  std::vector<int32_t> want;
  for (int i = 0; i < kSteps; ++i) {
    logits = a.Append(std::span(&next, 1), false);
    next = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
    want.push_back(next);
  }
  EXPECT_EQ(b.GreedyDecode(first, kSteps), want) << label;
  EXPECT_EQ(b.size(), a.size()) << label;
}

}  // namespace petrel::model::golden
