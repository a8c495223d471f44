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

}  // namespace petrel::model
