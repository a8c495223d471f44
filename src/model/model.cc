// The Llama-family forward pass (llama, mistral, qwen2, qwen3), written in the order of the paper:
// pre-norm attention with RoPE and GQA, then a pre-norm SwiGLU MLP, residuals around both.
#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string_view>

namespace petrel::model {

namespace {
// A [rows, cols] f32 view over the first rows*cols elements of a scratch buffer.
TensorView Rows(const Tensor& t, int64_t rows, int64_t cols) {
  return TensorView{t.data(), DType::kF32, Shape{rows, cols}};
}
}  // namespace

std::unique_ptr<kernels::KvCache> Model::CreateKvCache(int64_t n_blocks, int block_size, DType dtype) {
  kernels::KvCacheLayout layout{.n_layers = (int)config_.n_layers,
                                .n_kv_heads = (int)config_.n_kv_heads,
                                .head_dim = (int)config_.head_dim,
                                .block_size = block_size,
                                .n_blocks = n_blocks,
                                .dtype = dtype};
  return backend_->AllocateKvCache(layout);
}

void Model::EnsureActivations(int64_t T) {
  if (T <= act_.capacity) return;
  const auto& c = config_;
  const int64_t q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  act_.capacity = std::max<int64_t>(T, 16);
  const int64_t n = act_.capacity;
  auto alloc = [&](int64_t cols) { return backend_->Allocate(DType::kF32, {n, cols}); };
  act_.x = alloc(c.d_model);     // residual stream        [T, d]
  act_.h = alloc(c.d_model);     // normed input           [T, d]
  act_.q = alloc(q);             // queries                [T, n_heads*hd]
  act_.k = alloc(kv);            // keys                   [T, n_kv*hd]
  act_.v = alloc(kv);            // values                 [T, n_kv*hd]
  act_.attn = alloc(q);          // attention output       [T, n_heads*hd]
  act_.gate = alloc(c.ffn_dim);  // gate, then silu*up     [T, ffn]
  act_.up = alloc(c.ffn_dim);    // up projection          [T, ffn]
  act_.out = alloc(c.d_model);   // projection back to d   [T, d]
}

void Model::Forward(const ForwardBatch& batch, kernels::KvCache& cache, float* logits) {
  const auto& c = config_;
  auto& be = *backend_;
  const int64_t T = (int64_t)batch.tokens.size();
  const int64_t d = c.d_model, hd = c.head_dim;
  const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
  PETREL_CHECK(T > 0 && (int64_t)batch.positions.size() == T && (int64_t)batch.slots.size() == T);
  EnsureActivations(T);
  TensorView x = Rows(act_.x, T, d), h = Rows(act_.h, T, d), out = Rows(act_.out, T, d);
  TensorView q = Rows(act_.q, T, q_dim), k = Rows(act_.k, T, kv_dim), v = Rows(act_.v, T, kv_dim);
  TensorView attn = Rows(act_.attn, T, q_dim);
  TensorView gate = Rows(act_.gate, T, c.ffn_dim), up = Rows(act_.up, T, c.ffn_dim);
  const float scale = 1.0f / std::sqrt((float)hd);

  // For each job y = W x (+ b), all over the same x (one Backend::MatMuls: q/k/v, gate/up), plus
  // each adapter's B (A x) on its rows when the batch uses adapters (targets[i] for jobs[i]).
  // The adapters' A/B must be in this backend's memory (lora::UploadAdapter for a device).
  const bool lora = lora_.Plan(batch.seqs, batch.seq_adapters);
  using lora::LoraTarget;
  auto linear = [&](TensorView in, std::initializer_list<kernels::MatMulJob> jobs,
                    std::initializer_list<LoraTarget> targets, int64_t layer) {
    be.MatMuls(in, std::span(jobs.begin(), jobs.size()));
    if (!lora) return;
    const LoraTarget* t = targets.begin();
    for (const kernels::MatMulJob& j : jobs) lora_.Apply(be, j.out, in, layer, *t++);
  };

  // The step's index arrays, announced once (a device backend uploads them in one copy).
  be.BeginBatch({.tokens = batch.tokens, .positions = batch.positions, .slots = batch.slots,
                 .seqs = batch.seqs, .logit_rows = batch.logit_rows,
                 .tokens_from_last_step = async_.feed});
  be.Embedding(x, w_.embed, batch.tokens);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const LayerWeights& L = w_.layers[i];
    // Attention block.
    be.RmsNorm(h, x, L.attn_norm, (float)c.rms_eps);
    linear(h, {{q, L.q, L.q_bias}, {k, L.k, L.k_bias}, {v, L.v, L.v_bias}},
           {LoraTarget::kQ, LoraTarget::kK, LoraTarget::kV}, i);
    if (c.qk_norm) {  // Qwen3: RMSNorm over each head's vector, before RoPE
      be.RmsNorm(q, q, L.q_norm, (float)c.rms_eps);
      be.RmsNorm(k, k, L.k_norm, (float)c.rms_eps);
    }
    be.Rope(q, (int)c.n_heads, (int)hd, batch.positions, rope_);
    be.Rope(k, (int)c.n_kv_heads, (int)hd, batch.positions, rope_);
    be.StoreKv(cache, (int)i, k, v, batch.slots);
    const bool sliding = !c.layer_sliding.empty() && c.layer_sliding[i];
    be.Attention(attn, q, cache, batch.seqs,
                 kernels::AttentionParams{.layer = (int)i,
                                          .n_heads = (int)c.n_heads,
                                          .n_kv_heads = (int)c.n_kv_heads,
                                          .head_dim = (int)hd,
                                          .scale = scale,
                                          .sliding_window = sliding ? (int)c.sliding_window : 0});
    linear(attn, {{out, L.o, L.o_bias}}, {LoraTarget::kO}, i);
    be.Add(x, out);
    // MLP block: down(silu(gate(h)) * up(h)).
    be.RmsNorm(h, x, L.ffn_norm, (float)c.rms_eps);
    linear(h, {{gate, L.gate, L.gate_bias}, {up, L.up, L.up_bias}}, {LoraTarget::kGate, LoraTarget::kUp}, i);
    be.SiluMul(gate, gate, up);
    linear(gate, {{out, L.down, L.down_bias}}, {LoraTarget::kDown}, i);
    be.Add(x, out);
  }
  // Final norm and LM head, only for the rows whose logits are wanted.
  const int64_t R = (int64_t)batch.logit_rows.size();
  if (R == 0) return;
  // When every row is wanted in order (decode steps) the rows are x itself: no gather. The norm
  // goes out of place (into h, free by now), which lets a device backend fold it into the LM
  // head's matmul (CUDA: the GEMV's prologue) - two launches fewer per decode step.
  bool all_rows = R == T;
  for (int64_t r = 0; all_rows && r < R; ++r) all_rows = batch.logit_rows[r] == r;
  Tensor sel;
  TensorView rows_x = x;
  if (!all_rows) {
    sel = be.Allocate(DType::kF32, {R, d});
    be.GatherRows(sel, x, batch.logit_rows);
    rows_x = sel;
  }
  TensorView normed = Rows(act_.h, R, d);
  be.RmsNorm(normed, rows_x, w_.final_norm, (float)c.rms_eps);
  Tensor lg = be.Allocate(DType::kF32, {R, c.vocab_size});
  be.MatMul(lg, normed, w_.lm_head, TensorView{});
  if (consume_) (*consume_)(be, lg);
  else if (greedy_ids_) be.ArgMax(lg, greedy_ids_);
  else if (async_.sample)
    PETREL_CHECK(be.SampleRowsAsync(lg, async_.specs)) << "LaunchSample: no SampleRowsAsync";
  else if (async_.on) be.ArgMaxAsync(lg);
  else be.ToHost(lg, logits);
}

void Model::ForwardAsync(const ForwardBatch& batch, kernels::KvCache& cache, AsyncStep step) {
  struct Reset {
    Model* m;
    ~Reset() { m->async_ = AsyncStep{}; }
  } reset{this};
  step.on = true;
  if (step.feed && !backend_->FeedsStepTokens()) {
    // The backend cannot feed the tokens itself: the last ids from the host (the CPU has them
    // at once). Pipelined sampling needs a feeding backend (LaunchSample checks).
    const std::vector<int32_t> last = backend_->LastArgMax();
    PETREL_CHECK(last.size() >= batch.tokens.size())
        << "LaunchArgMax: " << batch.tokens.size() << " rows fed from " << last.size() << " ids";
    ForwardBatch b = batch;
    std::copy(last.begin(), last.begin() + (ptrdiff_t)b.tokens.size(), b.tokens.begin());
    step.feed = false;
    async_ = step;
    Forward(b, cache, nullptr);
    return;
  }
  async_ = step;
  Forward(batch, cache, nullptr);
}

void Model::LaunchArgMax(const ForwardBatch& batch, kernels::KvCache& cache,
                         bool tokens_from_last) {
  ForwardAsync(batch, cache, AsyncStep{.feed = tokens_from_last});
}

void Model::LaunchSample(const ForwardBatch& batch, kernels::KvCache& cache,
                         std::span<const kernels::SampleSpec> specs, bool tokens_from_last) {
  PETREL_CHECK(backend_->SamplesAsync() && (!tokens_from_last || backend_->FeedsStepTokens()))
      << "LaunchSample: the " << backend_->name() << " backend has no pipelined sampling";
  PETREL_CHECK(specs.size() == batch.logit_rows.size())
      << "LaunchSample: " << specs.size() << " specs for " << batch.logit_rows.size() << " rows";
  ForwardAsync(batch, cache, AsyncStep{.feed = tokens_from_last, .sample = true, .specs = specs});
}

}  // namespace petrel::model
