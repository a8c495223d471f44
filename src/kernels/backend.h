// The backend-neutral ops interface. Model code (src/model/) calls only these functions, in the
// order of the paper; the CPU backend implements them with threads + SIMD, and a CUDA backend will
// implement the same interface with device buffers, so adding it touches no model code
// [CTranslate2 ops layering, ggml backend function table].
//
// Conventions: activations are f32, row-major, one row per token of the flattened batch. Weights
// are TensorViews in their stored dtype (f32 / f16 / bf16), PyTorch Linear layout [out, in].
// Buffers passed to a backend were allocated by that backend (host memory for the CPU, device
// memory for CUDA) or returned by its UploadWeight(). The small per-step index arrays (token ids,
// positions, KV slots, block tables, logit rows) are always host memory: a device backend uploads
// them itself, once per step when the caller announces them with BeginBatch() (see there).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/kv_quant.h"
#include "core/tensor.h"

namespace petrel::kernels {

// Rotary embedding tables for one model: inv_freq[head_dim / 2] and the attention scaling that
// YaRN applies to cos/sin (1 otherwise). Rotation is the "rotate_half" form of HF Llama/Qwen:
// pairs (i, i + head_dim/2).
struct RopeTable {
  std::vector<float> inv_freq;
  float attention_scaling = 1.0f;
};

// A paged KV cache: for each layer, K and V pools of n_blocks blocks, each holding block_size
// tokens x n_kv_heads x head_dim in `dtype`; the order inside a block is the backend's own (CPU:
// head-major, [n_kv_heads, block_size, head_dim]; CUDA: token-major). Owned by the backend that
// allocated it; only its StoreKv and Attention touch the pools.
struct KvCacheLayout {
  int n_layers = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int block_size = 16;
  int64_t n_blocks = 0;
  DType dtype = DType::kF32;  // f32, bf16 (f16 on devices), or i8 (+ one f32 scale per head vector)
  int64_t BytesPerBlock() const {  // K + V, all layers
    return 2LL * n_layers * block_size * n_kv_heads * KvHeadVectorBytes(dtype, head_dim);
  }
};

class KvCache {
 public:
  virtual ~KvCache() = default;
  const KvCacheLayout& layout() const { return layout_; }

 protected:
  KvCacheLayout layout_;
};

// One sequence's slice of the flattened batch, for attention.
struct AttentionSeq {
  int32_t q_begin = 0;    // first row of this sequence in the batch
  int32_t q_len = 0;      // rows (new tokens) of this sequence
  int32_t ctx_len = 0;    // tokens in the cache after this step; the rows are positions
                          // ctx_len - q_len .. ctx_len - 1 (causal)
  std::span<const int32_t> block_table;  // physical block of each logical block
};

// The host-side index arrays of one forward step, announced to the backend before its ops run.
// A device backend copies them to device memory in one transfer (pinned staging buffer, one
// cudaMemcpyAsync) and afterwards recognises these same spans (by address and length) when an op
// receives them, instead of uploading them op by op. Ops given spans that were not announced still
// work (they are uploaded on the spot, slower). The arrays must stay alive and unchanged until the
// step's ToHost() (or the next BeginBatch) returns.
struct BatchMetadata {
  std::span<const int32_t> tokens{};      // [T]
  std::span<const int32_t> positions{};   // [T]
  std::span<const int64_t> slots{};       // [T]
  std::span<const AttentionSeq> seqs{};
  std::span<const int32_t> logit_rows{};  // [R]
  // Row i's token is id i of the last ArgMaxAsync or SampleRowsAsync (pipelined decoding),
  // taken where the ids are, not tokens[i] (whose values are then ignored; tokens still gives
  // the row count). Only for backends whose FeedsStepTokens() is true.
  bool tokens_from_last_step = false;
};

struct AttentionParams {
  int layer = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  float scale = 1.0f;      // usually 1/sqrt(head_dim)
  int sliding_window = 0;  // 0 = full causal attention
};

// Device memory of a backend, for planning the KV cache (cudaMemGetInfo on CUDA). Host-memory
// backends report zeros: the caller keeps its own sizing.
struct MemoryInfo {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};

// How to draw one token from one row of logits on the device (Backend::SampleRows). The
// truncations follow runtime/sampler.cc in the same order: temperature scaling, top_k (the k
// largest logits, ties to the smaller id), top_p (the smallest prefix of the remaining candidates
// sorted by logit whose probability, normalised over them, reaches top_p), min_p (keep
// p >= min_p * p_max), then a draw. Logit bias and penalties are not applied here (the engine
// samples such requests on the host).
struct SampleSpec {
  float temperature = 0.0f;  // 0 = greedy: the first maximal logit, exactly as ArgMax
  int top_k = 0;             // <= 0 or >= vocab: off
  float top_p = 1.0f;        // (0, 1]
  float min_p = 0.0f;        // [0, 1]
  uint64_t seed = 0;         // random stream of this request ...
  uint64_t step = 0;         // ... and position in it (e.g. tokens generated so far)
  int top_logprobs = -1;     // -1: no logprobs; 0: the chosen token's; n: also the n best (raw)
  bool skip = false;         // leave this row alone (its outputs are unspecified)
};

// What SampleRows returns per row. Logprobs are log-softmax of the raw logits (as the host
// sampler reports them); top[] holds max(top_logprobs, 0) entries, best first, ties by id.
struct SampleResult {
  int32_t token = 0;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;
};

// One of several products of the same activations (Backend::MatMuls).
struct MatMulJob {
  TensorView out, w, bias;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Allocates an f32 (or other) activation buffer.
  virtual Tensor Allocate(DType dtype, Shape shape) = 0;
  virtual std::unique_ptr<KvCache> AllocateKvCache(const KvCacheLayout& layout) = 0;
  // Makes a weight (host memory, e.g. mmapped) usable by this backend's ops and returns the view
  // the ops must be given. Called once per weight at load. The CPU returns `host` unchanged; the
  // CUDA backend copies it to device memory it owns until the backend is destroyed (1-D tensors,
  // i.e. norm weights and biases, are stored as f32 there). `host` may be released afterwards
  // unless the returned view aliases it.
  virtual TensorView UploadWeight(TensorView host) { return host; }
  // Announces the index arrays of the next forward step (see BatchMetadata). Optional: the CPU
  // ignores it. The CUDA backend also uses it to replay decode steps as CUDA graphs.
  virtual void BeginBatch(const BatchMetadata& meta) {}

  // out[t, :] = table[ids[t], :] as f32.                         out: [n, d]
  virtual void Embedding(TensorView out, TensorView table, std::span<const int32_t> ids) = 0;
  // out[r, :] = x[r, :] / rms(x[r, :]) * w  over rows of length w.dim(0) (x may be [T, H*hd]
  // normalised per head when w is [hd]). out may alias x.
  virtual void RmsNorm(TensorView out, TensorView x, TensorView w, float eps) = 0;
  // out[T, N] = x[T, K] . w[N, K]^T (+ bias[N]).  Accumulates in f32.
  virtual void MatMul(TensorView out, TensorView x, TensorView w, TensorView bias) = 0;
  // jobs[i].out = x . jobs[i].w^T (+ bias) for every job, all over the same x [T, K] (q/k/v,
  // gate/up). The default calls MatMul for each; the CPU runs decode rows as one parallel region
  // over all the jobs' rows (x quantised once for block-quantised weights).
  virtual void MatMuls(TensorView x, std::span<const MatMulJob> jobs) {
    for (const MatMulJob& j : jobs) MatMul(j.out, x, j.w, j.bias);
  }
  // out[T, N] += x[T, K] . w[N, K]^T, f32. For low-rank deltas (LoRA: K = rank, often 8-64), where
  // a GEMM tuned for large K wastes most of its time. The default is MatMul into a scratch buffer
  // plus Add (correct on any backend); backends override it with a small-K kernel.
  virtual void MatMulAdd(TensorView out, TensorView x, TensorView w) {
    Tensor tmp = Allocate(DType::kF32, out.shape);
    MatMul(tmp, x, w, TensorView{});
    Add(out, tmp);
  }
  // Rotates x [T, n_heads * head_dim] in place at positions[T].
  virtual void Rope(TensorView x, int n_heads, int head_dim, std::span<const int32_t> positions,
                    const RopeTable& rope) = 0;
  // x += y (same shape).
  virtual void Add(TensorView x, TensorView y) = 0;
  // out[T, F] = silu(gate[T, F]) * up[T, F].  out may alias gate.
  virtual void SiluMul(TensorView out, TensorView gate, TensorView up) = 0;
  // Writes k, v [T, n_kv_heads * head_dim] into the cache at slots[T] (block * block_size + offset).
  virtual void StoreKv(KvCache& cache, int layer, TensorView k, TensorView v,
                       std::span<const int64_t> slots) = 0;
  // Causal attention of q [T, n_heads * head_dim] over the cached K/V of each sequence.
  // out: [T, n_heads * head_dim]. GQA: head h reads kv head h / (n_heads / n_kv_heads).
  virtual void Attention(TensorView out, TensorView q, const KvCache& cache,
                         std::span<const AttentionSeq> seqs, const AttentionParams& p) = 0;
  // Copies rows `rows` of x into out (gathering e.g. the last token of each sequence).
  virtual void GatherRows(TensorView out, TensorView x, std::span<const int32_t> rows) = 0;
  // Copies a backend buffer (f32) to host memory; returns when `dst` holds the data. On a device
  // backend this is the step's synchronisation point.
  virtual void ToHost(TensorView src, float* dst) = 0;
  // Device memory (free, total) of this backend; zeros for host-memory backends.
  virtual MemoryInfo QueryMemory() { return {}; }
  // A copy of host data in this backend's memory, owned by the returned Tensor: freed (not
  // pooled) when it dies. Unlike the other methods it may be called, and the Tensor destroyed, on
  // any thread (LoRA adapters are uploaded by the thread that loads them). The default (host
  // backends) copies into host memory.
  virtual Tensor UploadOwned(TensorView host) {
    Tensor t(host.dtype, host.shape);
    if (host.NumBytes()) std::memcpy(t.data(), host.data, host.NumBytes());
    return t;
  }
  // Samples one token per row of logits [R, V] (f32, this backend's memory) on the device and
  // returns only the results: specs[R] and out[R]. Returns false when the backend has no such op
  // (the default: the caller copies the logits to the host and samples there). On a device backend
  // this is the step's synchronisation point, like ArgMax. The random numbers are Philox4x32-10
  // streams keyed by (seed, step, token id): the same seed and step give the same token on the
  // same backend and build, but they are not the host sampler's std::mt19937_64 stream.
  virtual bool SampleRows(TensorView logits, std::span<const SampleSpec> specs,
                          std::span<SampleResult> out) {
    return false;
  }
  // Pipelined sampling, as ArgMaxAsync / TakeArgMax for ArgMax: SampleRowsAsync starts
  // SampleRows and may return before the results reach the host (false, nothing done, where the
  // backend has no such path: SamplesAsync()); TakeSampled waits for the oldest started one's.
  // The ids feed the next step's tokens as ArgMaxAsync's do
  // (BatchMetadata::tokens_from_last_step).
  virtual bool SamplesAsync() const { return false; }
  virtual bool SampleRowsAsync(TensorView logits, std::span<const SampleSpec> specs) {
    return false;
  }
  virtual void TakeSampled(std::span<SampleResult> out) {
    PETREL_CHECK(false) << "TakeSampled: this backend has no SampleRowsAsync";
  }
  // The largest top_logprobs SampleRows serves (requests asking more are sampled on the host).
  static constexpr int kMaxDeviceTopLogprobs = 32;
  // Greedy choice per row: ids[r] = the first j with logits[r, j] maximal, for logits [R, V] f32
  // in this backend's memory; returns when the host array ids[R] holds them. On a device backend
  // this replaces ToHost() of the logits as the step's synchronisation point, and only the ids
  // cross to the host. The default (host-memory backends, e.g. the CPU) scans the rows in place.
  // Pipelined greedy decoding: ArgMaxAsync starts ArgMax(logits) and may return before the ids
  // reach the host; TakeArgMax(ids) waits for the oldest started one's ids (first in, first
  // out; at most kMaxArgMaxInFlight outstanding). A device backend thus lets the host prepare
  // and launch step n + 1 (its tokens fed from step n's ids, BatchMetadata::tokens_from_last_step)
  // while step n still runs, and take step n's ids afterwards - vLLM's "async scheduling". The
  // default computes the ids at once (ArgMax) and queues them.
  static constexpr int kMaxArgMaxInFlight = 2;
  virtual void ArgMaxAsync(TensorView logits) {
    PETREL_CHECK(argmax_queue_.size() < (size_t)kMaxArgMaxInFlight)
        << "ArgMaxAsync: " << kMaxArgMaxInFlight << " results not yet taken";
    const int64_t V = logits.dim(logits.shape.rank - 1);
    argmax_queue_.emplace_back(logits.NumElements() / V);
    ArgMax(logits, argmax_queue_.back().data());
  }
  virtual void TakeArgMax(int32_t* ids) {
    PETREL_CHECK(!argmax_queue_.empty()) << "TakeArgMax: no ArgMaxAsync outstanding";
    std::copy(argmax_queue_.front().begin(), argmax_queue_.front().end(), ids);
    argmax_queue_.pop_front();
  }
  // Whether BeginBatch honours BatchMetadata::tokens_from_last_step (the CUDA backend takes the
  // ids on the device). Otherwise the caller reads them with LastArgMax and passes them as tokens.
  virtual bool FeedsStepTokens() const { return false; }
  // The ids of the last ArgMaxAsync, without taking them (backends that do not feed tokens).
  virtual std::vector<int32_t> LastArgMax() {
    PETREL_CHECK(!argmax_queue_.empty()) << "LastArgMax: no ArgMaxAsync outstanding";
    return argmax_queue_.back();
  }

  virtual void ArgMax(TensorView logits, int32_t* ids) {
    const int64_t V = logits.dim(logits.shape.rank - 1);
    const int64_t R = logits.NumElements() / V;
    const float* l = logits.As<float>();
    for (int64_t r = 0; r < R; ++r) {
      int64_t best = 0;
      for (int64_t j = 1; j < V; ++j)
        if (l[r * V + j] > l[r * V + best]) best = j;
      ids[r] = (int32_t)best;
    }
  }

 private:
  std::deque<std::vector<int32_t>> argmax_queue_;  // the default ArgMaxAsync's results
};

// Arithmetic of the CPU matmul over bf16 weights.
//  kF32:  activations stay f32 (every dtype, every ISA): the exact path the golden tests pin.
//  kBF16: activations rounded to bf16 (round to nearest even) and multiplied with vdpbf16ps,
//         f32 accumulation, ~2x the f32 FMA rate; only for bf16 weights on CPUs with AVX512_BF16
//         (f32 elsewhere). Rounding as transformers computing a bf16 model and as llama.cpp rounding
//         activations to f16 for its F16 matmul.
//  kAuto: per sequence of the step (BeginBatch): kBF16 for the rows of a sequence that brings at
//         least kBf16MinRows new tokens (a prefill chunk), kF32 for the others (decode rows) and for
//         products over gathered rows (the LM head of a batch). So a sequence's arithmetic never
//         depends on which other sequences share its batch: 32 concurrent requests get exactly
//         what each gets alone. Direct calls outside a step: kBF16 from kBf16MinRows rows.
enum class MatMulPrecision { kAuto, kF32, kBF16 };
constexpr int64_t kBf16MinRows = 32;
// Parses "auto" | "f32" | "bf16"; kInvalidArgument otherwise.
Result<MatMulPrecision> ParseMatMulPrecision(const std::string& s);

// The CPU backend with `n_threads` worker threads (0 = all hardware threads). It picks the widest
// ISA the machine supports (AVX-512, AVX2, else scalar) once, at construction.
std::unique_ptr<Backend> CreateCpuBackend(int n_threads,
                                          MatMulPrecision precision = MatMulPrecision::kAuto);

// Name of the ISA level the CPU kernels use on this machine ("avx512", "avx2", "scalar").
const char* CpuIsaName();

// The CUDA backend on GPU `device` (sm_90 build). Errors: kUnsupported when petrel was built
// without -DPETREL_CUDA=ON, kNotFound when there is no such GPU (or no usable driver). Not
// thread-safe: one thread drives a backend (the engine loop does).
Result<std::unique_ptr<Backend>> CreateCudaBackend(int device);

}  // namespace petrel::kernels
