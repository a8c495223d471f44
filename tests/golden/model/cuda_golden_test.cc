// Golden tests on the CUDA backend (label gpu; skipped without a CUDA build or a GPU):
//  1. the Hugging Face references of model_golden_test.cc (qwen3-tiny and the other families),
//  2. CUDA against the CPU backend on a batch of sequences decoding together, which runs the
//     decode steps as captured CUDA graphs (recorded at the first step, replayed afterwards).
//
// Tolerance. The CPU backend computes in f32 and meets the references within 2e-3. On the GPU,
// matmuls of more than 8 rows (prefill) round the activations to bf16 before the tensor-core GEMM
// (f32 accumulation), as vLLM and transformers run bf16 models: every such product carries a
// relative error of up to 2^-9 (bf16 unit roundoff) per activation, and the rounding repeats in 7
// matmuls per layer; measured on the H100 (2026-11-26), the fixtures' logits (magnitude up to ~20)
// moved by at most 0.069 against the references and 0.11 against the f32 CPU backend over the whole
// vocabulary: about 0.5% of the largest logit, i.e. 2-3 bf16 ulps. We allow 0.15 absolute on top-k
// logits, logsumexp and probes; greedy tokens must match wherever the reference's top-2 margin
// exceeds 0.3 (twice the logit tolerance).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/json_util.h"
#include "model/model.h"

namespace petrel::model {
namespace {

constexpr float kLogitTol = 0.15f;
constexpr float kMarginTol = 0.3f;
constexpr int kBlock = 16;

std::unique_ptr<Model> LoadOn(const std::string& dir, const std::string& device) {
  auto m = LoadModel(dir, LoadOptions{.n_threads = 2, .device = device});
  if (!m.ok()) return nullptr;
  return std::move(m).value();
}

bool HaveCuda() {
  return LoadOn(std::string(PETREL_FIXTURES) + "/qwen3-tiny", "cuda") != nullptr;
}

std::vector<int32_t> IdsOf(const Json& j) { return j.get<std::vector<int32_t>>(); }

// One sequence at `start` with all rows' logits.
std::vector<float> Run(Model& m, kernels::KvCache& cache, const std::vector<int32_t>& ids,
                       int start, const std::vector<int32_t>& table) {
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
  std::vector<float> logits((size_t)n * m.config().vocab_size);
  m.Forward(b, cache, logits.data());
  return logits;
}

float CheckRow(const float* row, int64_t vocab, const Json& want, const std::vector<int32_t>& probe,
               const std::string& what) {
  float worst = 0;
  const float mx = *std::max_element(row, row + vocab);
  double s = 0;
  for (int64_t i = 0; i < vocab; ++i) s += std::exp((double)row[i] - mx);
  const float lse = mx + (float)std::log(s);
  worst = std::max(worst, std::abs(lse - want["logsumexp"].get<float>()));
  EXPECT_NEAR(lse, want["logsumexp"].get<float>(), kLogitTol) << what << " logsumexp";
  const auto top_ids = IdsOf(want["top_ids"]);
  const auto top_logits = want["top_logits"].get<std::vector<float>>();
  for (size_t i = 0; i < top_ids.size(); ++i) {
    worst = std::max(worst, std::abs(row[top_ids[i]] - top_logits[i]));
    EXPECT_NEAR(row[top_ids[i]], top_logits[i], kLogitTol) << what << " top " << i;
  }
  if (top_logits.size() > 1 && top_logits[0] - top_logits[1] > kMarginTol) {
    EXPECT_EQ(std::max_element(row, row + vocab) - row, top_ids[0]) << what << " argmax";
  }
  const auto probe_logits = want["probe_logits"].get<std::vector<float>>();
  for (size_t i = 0; i < probe.size(); ++i) {
    worst = std::max(worst, std::abs(row[probe[i]] - probe_logits[i]));
    EXPECT_NEAR(row[probe[i]], probe_logits[i], kLogitTol) << what << " probe " << i;
  }
  return worst;
}

// Prompt logits, then greedy steps (decode graphs are recorded at the first and replayed after).
float CheckCase(Model& m, const Json& ref, const std::vector<int32_t>& probe,
                const std::string& what) {
  const int64_t vocab = m.config().vocab_size;
  auto cache = m.CreateKvCache(64, kBlock, DType::kF32);
  std::vector<int32_t> table(64);
  std::iota(table.begin(), table.end(), 0);
  const std::vector<int32_t> ids = IdsOf(ref["ids"]);
  auto logits = Run(m, *cache, ids, 0, table);
  const auto& positions = ref["positions"];
  EXPECT_EQ(logits.size(), positions.size() * vocab) << what;
  float worst = 0;
  for (size_t p = 0; p < positions.size(); ++p)
    worst = std::max(worst, CheckRow(logits.data() + p * vocab, vocab, positions[p], probe,
                                     what + " pos " + std::to_string(p)));
  if (!ref.contains("greedy")) return worst;
  std::vector<float> last(logits.end() - vocab, logits.end());
  int pos = (int)ids.size();
  for (size_t step = 0; step < ref["greedy"].size(); ++step) {
    const Json& g = ref["greedy"][step];
    const std::string at = what + " greedy " + std::to_string(step);
    worst = std::max(worst, CheckRow(last.data(), vocab, g, probe, at));
    const int32_t want = g["token"].get<int32_t>();
    const int32_t got = (int32_t)(std::max_element(last.begin(), last.end()) - last.begin());
    if (g["margin"].get<float>() > kMarginTol) {
      EXPECT_EQ(got, want) << at;
      if (got != want) break;
    } else if (got != want) {
      break;  // an ambiguous step went the other way: the rest of the reference does not apply
    }
    last = Run(m, *cache, {want}, pos++, table);
  }
  return worst;
}

void RunFamily(const std::string& dir, const Json& cases, const std::vector<int32_t>& probe,
               const std::string& label) {
  auto m = LoadOn(dir, "cuda");
  ASSERT_TRUE(m) << label;
  float worst = 0;
  for (const auto& c : cases)
    worst = std::max(worst, CheckCase(*m, c, probe, label + "/" + c["name"].get<std::string>()));
  std::printf("%s on cuda: max |logit delta| = %g\n", label.c_str(), worst);
}

Json LoadRefs(const std::string& path) {
  auto j = ReadJsonFile(path);
  EXPECT_TRUE(j.ok()) << j.error().ToString();
  return j.ok() ? *j : Json();
}

class CudaGolden : public testing::Test {
 protected:
  void SetUp() override {
    if (!HaveCuda()) GTEST_SKIP() << "no CUDA device (or built without -DPETREL_CUDA=ON)";
  }
};

TEST_F(CudaGolden, Qwen3TinyMatchesTransformers) {
  const std::string fx = PETREL_FIXTURES;
  Json refs = LoadRefs(fx + "/refs.json");
  RunFamily(fx + "/qwen3-tiny", refs["base"], IdsOf(refs["probe_ids"]), "qwen3-tiny");
}

TEST_F(CudaGolden, OtherFamiliesMatchTransformers) {
  const std::string root = std::string(PETREL_FIXTURES) + "/models";
  if (!std::filesystem::exists(root)) GTEST_SKIP() << "no extra model fixtures";
  for (const auto& e : std::filesystem::directory_iterator(root)) {
    if (!std::filesystem::exists(e.path() / "refs.json")) continue;
    Json refs = LoadRefs((e.path() / "refs.json").string());
    RunFamily(e.path().string(), refs["cases"], IdsOf(refs["probe_ids"]),
              e.path().filename().string());
  }
}

// Three sequences prefilled together (mixed lengths, one forward), then decoding together for 12
// steps: CUDA (graph replays from the second decode step) against the CPU backend, fed the same
// tokens (the CPU's greedy choices). Every logit of every step is compared.
TEST_F(CudaGolden, BatchedDecodeWithGraphsMatchesCpu) {
  const std::string dir = std::string(PETREL_FIXTURES) + "/qwen3-tiny";
  auto cpu = LoadOn(dir, "cpu");
  auto gpu = LoadOn(dir, "cuda");
  ASSERT_TRUE(cpu && gpu);
  const int64_t vocab = cpu->config().vocab_size;
  for (DType kv : {DType::kF32, DType::kBF16}) {
    auto cpu_cache = cpu->CreateKvCache(32, kBlock, kv);
    auto gpu_cache = gpu->CreateKvCache(32, kBlock, kv);
    const std::vector<std::vector<int32_t>> prompts = {
        {9707, 11, 1879}, {785, 6722, 315, 9625, 374, 12095, 13, 576, 6722, 315, 9856, 374},
        {16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35}};
    std::vector<std::vector<int32_t>> tables = {{3, 7, 1}, {0, 5, 9}, {8, 2, 30}};
    std::vector<int> len(3, 0);
    std::vector<int32_t> next(3);
    for (int step = 0; step < 13; ++step) {
      ForwardBatch b;
      for (int s = 0; s < 3; ++s) {
        const std::vector<int32_t> ids = step == 0 ? prompts[s] : std::vector<int32_t>{next[s]};
        const int begin = (int)b.tokens.size();
        for (size_t i = 0; i < ids.size(); ++i) {
          const int pos = len[s] + (int)i;
          b.tokens.push_back(ids[i]);
          b.positions.push_back(pos);
          b.slots.push_back((int64_t)tables[s][pos / kBlock] * kBlock + pos % kBlock);
        }
        len[s] += (int)ids.size();
        b.seqs.push_back(kernels::AttentionSeq{begin, (int)ids.size(), len[s], tables[s]});
        b.logit_rows.push_back((int32_t)b.tokens.size() - 1);
      }
      std::vector<float> want(3 * vocab), got(3 * vocab);
      cpu->Forward(b, *cpu_cache, want.data());
      gpu->Forward(b, *gpu_cache, got.data());
      float worst = 0;
      for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(want[i] - got[i]));
      EXPECT_LT(worst, kLogitTol) << DTypeName(kv) << " step " << step;
      for (int s = 0; s < 3; ++s)
        next[s] = (int32_t)(std::max_element(want.begin() + s * vocab, want.begin() + (s + 1) * vocab) -
                            (want.begin() + s * vocab));
    }
  }
}

}  // namespace
}  // namespace petrel::model
