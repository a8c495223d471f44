#include "model/sequence_runner.h"

#include <numeric>

namespace petrel::model {

SequenceRunner::SequenceRunner(Model& model, int64_t max_tokens, DType kv_dtype)
    : model_(model), capacity_(max_tokens) {
  const int64_t n_blocks = (max_tokens + kBlock - 1) / kBlock;
  cache_ = model.CreateKvCache(n_blocks, kBlock, kv_dtype);
  table_.resize(n_blocks);
  std::iota(table_.begin(), table_.end(), 0);
}

std::vector<float> SequenceRunner::Append(std::span<const int32_t> ids, bool all_logits) {
  PETREL_CHECK(n_ + (int64_t)ids.size() <= capacity_) << "SequenceRunner capacity " << capacity_;
  ForwardBatch b;
  const int n = (int)ids.size();
  for (int i = 0; i < n; ++i) {
    const int64_t pos = n_ + i;
    b.tokens.push_back(ids[i]);
    b.positions.push_back((int32_t)pos);
    b.slots.push_back((int64_t)table_[pos / kBlock] * kBlock + pos % kBlock);
    if (all_logits || i == n - 1) b.logit_rows.push_back(i);
  }
  b.seqs.push_back(kernels::AttentionSeq{0, n, (int32_t)(n_ + n), table_});
  if (adapter_) b.seq_adapters.push_back(adapter_);
  std::vector<float> logits(b.logit_rows.size() * model_.config().vocab_size);
  model_.Forward(b, *cache_, logits.data());
  n_ += n;
  return logits;
}

ForwardBatch SequenceRunner::DecodeStep(int64_t pos, int32_t token) const {
  ForwardBatch b;
  b.tokens = {token};
  b.positions = {(int32_t)pos};
  b.slots = {(int64_t)table_[pos / kBlock] * kBlock + pos % kBlock};
  b.seqs.push_back(kernels::AttentionSeq{0, 1, (int32_t)(pos + 1), table_});
  b.logit_rows = {0};
  if (adapter_) b.seq_adapters.push_back(adapter_);
  return b;
}

std::vector<int32_t> SequenceRunner::GreedyDecode(int32_t first, int n) {
  std::vector<int32_t> out;
  if (n <= 0) return out;
  PETREL_CHECK(n_ + n <= capacity_) << "SequenceRunner capacity " << capacity_;
  int32_t id = 0;
  model_.LaunchArgMax(DecodeStep(n_, first), *cache_, false);
  for (int i = 1; i < n; ++i) {
    model_.LaunchArgMax(DecodeStep(n_ + i, 0), *cache_, true);  // its token: the last step's id
    model_.CollectArgMax(&id);
    out.push_back(id);
  }
  model_.CollectArgMax(&id);
  out.push_back(id);
  n_ += n;
  return out;
}

}  // namespace petrel::model
