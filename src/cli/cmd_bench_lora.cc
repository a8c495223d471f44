// `petrel bench-lora MODEL_DIR [--load-format dummy] [--rank 16] [--batch 4] [--threads N]`:
// decode tokens/s of the base model, with one LoRA adapter, and with `batch` distinct adapters in
// one batch (random rank-r adapters on all 7 projections of every layer, made in memory), so the
// cost of the runtime delta y += B (A x) can be read off against the base model.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "core/json_util.h"
#include "model/lora/adapter.h"
#include "model/model.h"

namespace petrel::cli {

namespace {

// A random adapter in the runtime form (scale folded into B): A ~ U(-1,1)/sqrt(in), B ~ U(-1,1)/r.
std::shared_ptr<const model::lora::LoraAdapter> RandomAdapter(const formats::ModelConfig& c, int64_t rank,
                                                              uint32_t seed) {
  auto a = std::make_shared<model::lora::LoraAdapter>();
  a->path = "random-" + std::to_string(seed);
  a->base_n_layers = c.n_layers;
  a->all_layers = true;
  a->layers.resize(c.n_layers);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < c.n_layers; ++i)
    for (auto t : model::lora::kAllLoraTargets) {
      const auto [out, in] = model::lora::LoraTargetShape(c, t);
      auto& l = a->layers[i][(int)t];
      l.a = Tensor(DType::kF32, Shape{rank, in});
      l.b = Tensor(DType::kF32, Shape{out, rank});
      for (int64_t k = 0; k < l.a.NumElements(); ++k) l.a.As<float>()[k] = u(rng) / std::sqrt((float)in);
      for (int64_t k = 0; k < l.b.NumElements(); ++k) l.b.As<float>()[k] = u(rng) / (float)rank;
    }
  return a;
}

// Decode tokens/s of `adapters.size()` sequences stepping together, for one run: a prefill of
// prompt_tokens (not timed), then gen_tokens timed decode steps.
double DecodeTokS(model::Model& m, const std::vector<const model::lora::LoraAdapter*>& adapters,
                  int prompt_tokens, int gen_tokens) {
  const int n = (int)adapters.size();
  const int block = 16, per_seq = (prompt_tokens + gen_tokens + block - 1) / block;
  auto cache = m.CreateKvCache((int64_t)n * per_seq, block, DType::kF32);
  std::vector<std::vector<int32_t>> tables(n);
  for (int s = 0; s < n; ++s) {
    tables[s].resize(per_seq);
    std::iota(tables[s].begin(), tables[s].end(), s * per_seq);
  }
  const bool any = std::any_of(adapters.begin(), adapters.end(), [](auto* a) { return a != nullptr; });
  auto step = [&](int from, int to) {
    model::ForwardBatch b;
    for (int s = 0; s < n; ++s) {
      const int begin = (int)b.tokens.size();
      for (int pos = from; pos < to; ++pos) {
        b.tokens.push_back((s * 7919 + pos * 104729 + 1) % 100000);
        b.positions.push_back(pos);
        b.slots.push_back((int64_t)tables[s][pos / block] * block + pos % block);
      }
      b.logit_rows.push_back((int32_t)b.tokens.size() - 1);
      b.seqs.push_back(kernels::AttentionSeq{begin, to - from, to, tables[s]});
      if (any) b.seq_adapters.push_back(adapters[s]);
    }
    std::vector<float> logits(b.logit_rows.size() * m.config().vocab_size);
    m.Forward(b, *cache, logits.data());
  };
  step(0, prompt_tokens);
  const auto t0 = std::chrono::steady_clock::now();
  for (int g = 0; g < gen_tokens; ++g) step(prompt_tokens + g, prompt_tokens + g + 1);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return n * gen_tokens / s;
}

}  // namespace

int RunBenchLora(int argc, char** argv) {
  int rank = 16, batch = 4, prompt_tokens = 32, gen_tokens = 16, runs = 3;
  bool json = false;
  ModelFlags mf;
  Flags f("petrel bench-lora MODEL_DIR [--load-format dummy] [--rank 16] [--batch 4] [--threads N] [--json]");
  f.Add("rank", &rank, "rank of the random adapters (default 16)")
      .Add("batch", &batch, "sequences (and distinct adapters) in the batched runs (default 4)")
      .Add("prompt-tokens", &prompt_tokens, "context before decoding (default 32)")
      .Add("gen-tokens", &gen_tokens, "decode steps timed per run (default 16)")
      .Add("runs", &runs, "runs per configuration, interleaved; the median is reported (default 3)")
      .AddSwitch("json", &json, "print the results as one JSON object on the last line");
  mf.Register(f);
  if (auto st = f.Parse(argc, argv); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1 || rank < 1 || batch < 1 || runs < 1 || gen_tokens < 1 ||
      prompt_tokens < 1) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  auto m = model::LoadModel(f.positional()[0], mf.ToLoadOptions());
  if (!m.ok()) return ReportError(m.error());
  const auto& c = (*m)->config();
  std::vector<std::shared_ptr<const model::lora::LoraAdapter>> owned;
  for (int i = 0; i < batch; ++i) owned.push_back(RandomAdapter(c, rank, 1000 + i));
  const auto* first = owned[0].get();
  std::fprintf(stderr, "%s: %s, %lld layers; %d random rank-%d adapters on all 7 projections (%.1f MB each, f32)\n",
               f.positional()[0].c_str(), c.architecture.c_str(), (long long)c.n_layers, batch, rank,
               first->NumBytes() / 1e6);

  struct Row {
    std::string name;
    std::vector<const model::lora::LoraAdapter*> adapters;
    double tok_s = 0;
  };
  std::vector<Row> rows = {{"batch 1, base", {nullptr}},
                           {"batch 1, 1 adapter", {first}},
                           {"batch " + std::to_string(batch) + ", base", std::vector<const model::lora::LoraAdapter*>(batch, nullptr)},
                           {"batch " + std::to_string(batch) + ", 1 adapter", std::vector<const model::lora::LoraAdapter*>(batch, first)},
                           {"batch " + std::to_string(batch) + ", " + std::to_string(batch) + " adapters", {}}};
  for (const auto& a : owned) rows.back().adapters.push_back(a.get());
  // Runs interleave the configurations (run 1 of each, then run 2 of each, ...) so that load
  // changes on a shared machine hit them alike; each reports its median.
  std::vector<std::vector<double>> rates(rows.size());
  for (int run = 0; run < runs; ++run)
    for (size_t k = 0; k < rows.size(); ++k)
      rates[k].push_back(DecodeTokS(**m, rows[k].adapters, prompt_tokens, gen_tokens));
  Json out;
  for (size_t k = 0; k < rows.size(); ++k) {
    std::sort(rates[k].begin(), rates[k].end());
    rows[k].tok_s = rates[k][rates[k].size() / 2];
  }
  for (auto& r : rows) {
    const double base = r.adapters.size() == 1 ? rows[0].tok_s : rows[2].tok_s;
    std::printf("%-24s decode %8.2f tok/s  (%+.1f%% vs base)\n", r.name.c_str(), r.tok_s,
                100.0 * (r.tok_s / base - 1.0));
    out[r.name] = r.tok_s;
  }
  if (json) std::printf("%s\n", DumpJson(out).c_str());
  return 0;
}

}  // namespace petrel::cli
