// One forward step serving sequences with different adapters (or none): every sequence gets the
// logits it gets alone, in any order of the sequences in the batch, for prefill and decode rows.
#include <gtest/gtest.h>

#include <numeric>

#include "model/lora/adapter.h"
#include "model/model.h"

namespace petrel::model {
namespace {

const std::string kFx = PETREL_FIXTURES;
constexpr int kBlock = 16;

struct Seq {
  std::vector<int32_t> ids;
  const lora::LoraAdapter* adapter;
  std::vector<int32_t> table;  // blocks of this sequence in the shared cache
};

// Runs `seqs` (rows [from, to) of each) as one batch; returns the logits of every row.
std::vector<float> RunBatch(Model& m, kernels::KvCache& cache, const std::vector<Seq>& seqs,
                            const std::vector<size_t>& order, int from, int to) {
  ForwardBatch b;
  for (size_t k : order) {
    const Seq& s = seqs[k];
    const int begin = (int)b.tokens.size();
    for (int pos = from; pos < to; ++pos) {
      b.tokens.push_back(s.ids[pos]);
      b.positions.push_back(pos);
      b.slots.push_back((int64_t)s.table[pos / kBlock] * kBlock + pos % kBlock);
      b.logit_rows.push_back((int32_t)b.tokens.size() - 1);
    }
    b.seqs.push_back(kernels::AttentionSeq{begin, to - from, to, s.table});
    b.seq_adapters.push_back(s.adapter);
  }
  std::vector<float> logits(b.logit_rows.size() * m.config().vocab_size);
  m.Forward(b, cache, logits.data());
  return logits;
}

TEST(LoraBatch, MixedAdaptersGiveEachSequenceItsAloneLogits) {
  auto m = LoadModel(kFx + "/qwen3-tiny", LoadOptions{.n_threads = 2});
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  Model& model = **m;
  auto all = lora::LoadAdapter(kFx + "/qwen3-tiny-lora-all", model.config());
  auto qv = lora::LoadAdapter(kFx + "/qwen3-tiny-lora-qv", model.config());
  ASSERT_TRUE(all.ok() && qv.ok());
  const int64_t vocab = model.config().vocab_size;
  const int prompt = 9, total = 12;  // 9 prefill rows, then 3 decode steps

  // Five sequences: base, all, qv, all again (not adjacent to the first), base again.
  const lora::LoraAdapter* adapters[] = {nullptr, all->get(), qv->get(), all->get(), nullptr};
  std::vector<Seq> seqs;
  for (int k = 0; k < 5; ++k) {
    Seq s;
    for (int j = 0; j < total; ++j) s.ids.push_back((k * 7919 + j * 104729 + 11) % 150000);
    s.adapter = adapters[k];
    s.table = {2 * k, 2 * k + 1};
    seqs.push_back(s);
  }
  auto cache = model.CreateKvCache(10, kBlock, DType::kF32);

  // Alone: each sequence by itself, prefill then decode steps.
  std::vector<std::vector<float>> alone(5);
  for (size_t k = 0; k < seqs.size(); ++k) {
    alone[k] = RunBatch(model, *cache, seqs, {k}, 0, prompt);
    for (int pos = prompt; pos < total; ++pos) {
      auto row = RunBatch(model, *cache, seqs, {k}, pos, pos + 1);
      alone[k].insert(alone[k].end(), row.begin(), row.end());
    }
  }
  // The adapters change the logits (so the comparison below means something).
  float diff = 0;
  for (int64_t i = 0; i < vocab; ++i) diff = std::max(diff, std::abs(alone[0][i] - alone[1][i]));
  EXPECT_GT(diff, 1e-2f);

  // Together, in two different orders.
  for (const std::vector<size_t>& order : {std::vector<size_t>{0, 1, 2, 3, 4}, {2, 1, 4, 3, 0}}) {
    std::vector<std::vector<float>> got(5);
    auto pre = RunBatch(model, *cache, seqs, order, 0, prompt);
    for (size_t j = 0; j < order.size(); ++j)
      got[order[j]].assign(pre.begin() + j * prompt * vocab, pre.begin() + (j + 1) * prompt * vocab);
    for (int pos = prompt; pos < total; ++pos) {
      auto step = RunBatch(model, *cache, seqs, order, pos, pos + 1);
      for (size_t j = 0; j < order.size(); ++j)
        got[order[j]].insert(got[order[j]].end(), step.begin() + j * vocab, step.begin() + (j + 1) * vocab);
    }
    for (size_t k = 0; k < seqs.size(); ++k) {
      ASSERT_EQ(got[k].size(), alone[k].size());
      float worst = 0;
      for (size_t i = 0; i < got[k].size(); ++i) worst = std::max(worst, std::abs(got[k][i] - alone[k][i]));
      EXPECT_LT(worst, 1e-4f) << "sequence " << k << " (order starting " << order[0] << ")";
    }
  }
}

// --lora A --lora B: one combined adapter equals applying both deltas.
TEST(LoraBatch, CombinedAdapterEqualsBothDeltas) {
  auto m = LoadModel(kFx + "/qwen3-tiny", LoadOptions{.n_threads = 2});
  ASSERT_TRUE(m.ok());
  auto all = lora::LoadAdapter(kFx + "/qwen3-tiny-lora-all", (*m)->config());
  auto qv = lora::LoadAdapter(kFx + "/qwen3-tiny-lora-qv", (*m)->config());
  ASSERT_TRUE(all.ok() && qv.ok());
  auto both = lora::CombineAdapters({*all, *qv});
  ASSERT_TRUE(both.ok()) << both.error().ToString();
  const lora::LoraLinear* q = (*both)->Find(1, lora::LoraTarget::kQ);
  const lora::LoraLinear* k = (*both)->Find(1, lora::LoraTarget::kK);
  ASSERT_TRUE(q && k);
  EXPECT_EQ(q->rank(), 8 + 4);
  EXPECT_EQ(k->rank(), 8);
  // ΔW of the combined q_proj = ΔW_all + ΔW_qv, element by element.
  auto delta = [](const lora::LoraLinear& l, int64_t o, int64_t i) {
    double s = 0;
    for (int64_t r = 0; r < l.rank(); ++r)
      s += (double)l.b.As<float>()[o * l.rank() + r] * l.a.As<float>()[r * l.in_features() + i];
    return s * l.scale;
  };
  const auto* qa = (*all)->Find(1, lora::LoraTarget::kQ);
  const auto* qq = (*qv)->Find(1, lora::LoraTarget::kQ);
  for (int64_t o : {0, 5, 127})
    for (int64_t i : {0, 17, 63})
      EXPECT_NEAR(delta(*q, o, i), delta(*qa, o, i) + delta(*qq, o, i), 1e-6);
}

}  // namespace
}  // namespace petrel::model
