#include "model/lora/lora_batch.h"

namespace petrel::model::lora {

namespace {
// A [rows, cols] f32 view of `t` starting at row `row0` (row-major, so a row range is contiguous).
TensorView RowsOf(TensorView t, int64_t row0, int64_t rows, int64_t cols) {
  return TensorView{static_cast<float*>(t.data) + row0 * cols, DType::kF32, Shape{rows, cols}};
}
}  // namespace

bool LoraBatch::Plan(std::span<const kernels::AttentionSeq> seqs,
                     std::span<const LoraAdapter* const> adapters) {
  runs_.clear();
  if (adapters.empty()) return false;
  PETREL_CHECK(adapters.size() == seqs.size()) << "seq_adapters must be parallel to seqs";
  for (size_t i = 0; i < seqs.size(); ++i) {
    const LoraAdapter* a = adapters[i];
    if (!a) continue;
    const int64_t row0 = seqs[i].q_begin, n = seqs[i].q_len;
    if (!runs_.empty() && runs_.back().adapter == a && runs_.back().row0 + runs_.back().n == row0) {
      runs_.back().n += n;  // extends the previous run of the same adapter
    } else {
      runs_.push_back(Run{row0, n, a});
    }
  }
  return !runs_.empty();
}

void LoraBatch::Apply(kernels::Backend& be, TensorView y, TensorView x, int64_t layer, LoraTarget t) {
  const int64_t in = x.dim(x.shape.rank - 1), out = y.dim(y.shape.rank - 1);
  for (const Run& r : runs_) {
    const LoraLinear* l = r.adapter->Find(layer, t);
    if (!l) continue;
    PETREL_DCHECK(l->in_features() == in && l->out_features() == out);
    const int64_t rank = l->rank();
    PETREL_DCHECK(l->scale == 1.0f) << "runtime adapters carry the scale in B (LoadAdapter)";
    // Scratch for A x grows to the largest run and rank seen; it comes from the backend.
    if (r.n > max_rows_ || rank > max_rank_) {
      max_rows_ = std::max(max_rows_, r.n);
      max_rank_ = std::max(max_rank_, rank);
      tmp_ = be.Allocate(DType::kF32, {max_rows_, max_rank_});
    }
    TensorView tmp = RowsOf(tmp_, 0, r.n, rank);  // [n, rank]
    be.MatMul(tmp, RowsOf(x, r.row0, r.n, in), l->a, TensorView{});  // [n, rank]: large K, small N
    be.MatMulAdd(RowsOf(y, r.row0, r.n, out), tmp, l->b);             // y += tmp . B^T: K = rank
  }
}

}  // namespace petrel::model::lora
