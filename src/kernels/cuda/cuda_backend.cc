// The CUDA backend: the ops of kernels/backend.h on one GPU, one stream.
//
// Memory. Activation buffers (Allocate) come from a size-bucketed pool of cudaMalloc blocks and go
// back to it when their Tensor dies: no cudaMalloc/cudaFree (which synchronise the device) in the
// steady state, and the same buffers come back step after step. Weights are copied to the device
// once (UploadWeight) and owned by the backend; 1-D weights (norms, biases) are stored as f32.
//
// Index arrays. BeginBatch() packs the step's host arrays (token ids, positions, KV slots, block
// tables padded to a fixed stride, logit rows, and the row -> sequence map attention needs) into a
// pinned staging buffer and uploads them with one cudaMemcpyAsync into a device buffer of fixed
// layout. Ops recognise those spans by address and use the device copies; spans that were not
// announced are uploaded on the spot (tests calling single ops do this).
//
// CUDA graphs. Every op is issued through Submit(key, launch): `key` lists everything the launch
// depends on (op, device pointers, sizes, scalars), `launch` enqueues its kernels. In a decode step
// (every sequence adds one token) the ops are run and recorded; at the step's end (ToHost) the
// recording is captured into a CUDA graph for that batch size. In later decode steps of the same
// size the ops only compare their keys against the recording; if all match, ToHost launches the
// graph instead of ~17 kernels per layer. Anything different (another buffer, a grown block
// table stride, one op more or less) makes the step fall back to running the recorded prefix and
// the rest eagerly, and re-records. Index arrays live at fixed device addresses, so the graphs
// read each step's fresh values.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <unordered_map>
#include <vector>

#include "core/log.h"
#include "kernels/backend.h"
#include "kernels/cuda/add.cuh"
#include "kernels/cuda/argmax.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_attention.cuh"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/elem.h"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/graph_record.h"
#include "kernels/cuda/head_ops.cuh"
#include "kernels/cuda/pending_heads.h"
#include "kernels/cuda/readback_ring.h"
#include "kernels/cuda/rope_tables.h"
#include "kernels/cuda/step_timer.h"
#include "kernels/cuda/trace_recorder.h"
#include "kernels/cuda/matmul.cuh"
#include "kernels/cuda/paged_attention.cuh"
#include "kernels/cuda/prefill_attention.cuh"
#include "kernels/cuda/rms_norm.cuh"
#include "kernels/cuda/rope.cuh"
#include "kernels/cuda/sample.cuh"
#include "kernels/cuda/sample_buffers.h"
#include "kernels/cuda/silu_mul.cuh"
#include "kernels/cuda/store_kv.cuh"

namespace petrel::kernels {

namespace cuda {

void CudaFail(const char* stmt, const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: CUDA call failed: %s: %s\n", file, line, stmt, what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace cuda

namespace {

using cuda::Elem;

using cuda::CudaKvCache, cuda::DeviceBatch, cuda::DeviceBuffer, cuda::DevicePool, cuda::PinnedBuffer;
using cuda::HeadEntry, cuda::Overlaps, cuda::PendingHeads, cuda::ToDecodeHeadOps;
using cuda::DecodeGraph, cuda::ElemOf, cuda::MakeKey, cuda::NextPow2, cuda::OpKey, cuda::RecordedOp,
    cuda::RoundUp;

enum class OpCode : int {
  kEmbedding, kRmsNorm, kMatMul, kRope, kAdd, kSiluMul, kStoreKv, kAttention, kGatherRows,
  kGemvGroup, kAddRmsNorm, kArgMax, kHeadOps, kSample, kRopeTable
};

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUDA_CHECK(cublasCreate(&cublas_));
    CUDA_CHECK(cublasSetStream(cublas_, stream_));
    // A fixed workspace keeps cuBLAS from allocating inside graph capture.
    cublas_workspace_ = DeviceBuffer(kCublasWorkspace);
    CUDA_CHECK(cublasSetWorkspace(cublas_, cublas_workspace_.get(), kCublasWorkspace));
    cuda::ConfigurePagedAttention();
    cuda::ConfigureDecodeAttention();
    cuda::ConfigurePrefillAttention();
    // LM-head argmax keys [kGemvMaxRows] u64 and the block counter: zero between launches.
    amax_buf_ = DeviceBuffer(cuda::kGemvMaxRows * 8 + 8);
    CUDA_CHECK(cudaMemset(amax_buf_.get(), 0, amax_buf_.bytes()));
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaStreamCreateWithFlags(&upload_stream_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaStreamCreateWithFlags(&readback_stream_, cudaStreamNonBlocking));
    for (int i = 0; i < 2; ++i) {
      CUDA_CHECK(cudaEventCreateWithFlags(&batches_[i].uploaded, cudaEventDisableTiming));
      CUDA_CHECK(cudaEventCreateWithFlags(&released_[i], cudaEventDisableTiming));
    }
    CUDA_CHECK(cudaEventCreateWithFlags(&step_done_, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&params_up_, cudaEventDisableTiming));
    async_ids_.Init();
    async_samples_.Init();
    CUDA_CHECK(cudaEventCreateWithFlags(&adhoc_.uploaded, cudaEventDisableTiming));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    name_ = std::string("cuda:") + std::to_string(device);
    // PETREL_CUDA_GRAPHS=0 runs every step eagerly (to measure what the graphs save, or to debug).
    const char* g = std::getenv("PETREL_CUDA_GRAPHS");
    graphs_enabled_ = !(g && std::string(g) == "0");
    // PETREL_CUDA_PREFILL_MIN_BLOCKS: blocks from which prefill attention uses the tiled kernel
    // (default 264, two per SM; 0 always, for tests).
    if (const char* p = std::getenv("PETREL_CUDA_PREFILL_MIN_BLOCKS"))
      prefill_min_blocks_ = std::atoll(p);
    LogInfo("CUDA backend on ", name_, ": ", prop.name, ", ", prop.multiProcessorCount, " SMs, ",
            prop.totalGlobalMem >> 20, " MiB");
  }

  ~CudaBackend() override {
    OnDevice();
    cudaStreamSynchronize(stream_);
    graphs_.Clear();
    cudaStreamSynchronize(upload_stream_);
    cudaStreamSynchronize(readback_stream_);
    for (int i = 0; i < 2; ++i) {
      cudaEventDestroy(batches_[i].uploaded);
      cudaEventDestroy(released_[i]);
    }
    cudaEventDestroy(step_done_);
    cudaEventDestroy(params_up_);
    cudaStreamDestroy(upload_stream_);
    cudaStreamDestroy(readback_stream_);
    cudaEventDestroy(adhoc_.uploaded);
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }

  const char* name() const override { return name_.c_str(); }

  Tensor Allocate(DType dtype, Shape shape) override {
    OnDevice();
    const size_t bytes = (size_t)shape.NumElements() * DTypeSize(dtype);
    return Tensor(pool_.Get(bytes), dtype, shape, &DevicePool::Release, &pool_);
  }

  std::unique_ptr<KvCache> AllocateKvCache(const KvCacheLayout& layout) override {
    OnDevice();
    PETREL_CHECK(layout.dtype == DType::kF32 || layout.dtype == DType::kBF16 ||
                 layout.dtype == DType::kF16)
        << "KV cache dtype " << DTypeName(layout.dtype);
    return std::make_unique<CudaKvCache>(layout);
  }

  TensorView UploadWeight(TensorView host) override {
    OnDevice();
    if (host.empty()) return host;
    std::vector<float> f32;
    const void* src = host.data;
    DType dtype = host.dtype;
    if (host.shape.rank == 1 && host.dtype != DType::kF32) {  // norms and biases: f32 on device
      f32.resize(host.NumElements());
      ConvertToF32(host.data, host.dtype, f32.data(), host.NumElements());
      src = f32.data();
      dtype = DType::kF32;
    }
    TensorView dev{nullptr, dtype, host.shape};
    weights_.emplace_back(dev.NumBytes());
    dev.data = weights_.back().get();
    CUDA_CHECK(cudaMemcpy(dev.data, src, dev.NumBytes(), cudaMemcpyHostToDevice));
    return dev;
  }

  void BeginBatch(const BatchMetadata& meta) override {
    OnDevice();
    FlushPending();
    FinishStep();
    rope_.NewStep();
    tracer_.OnStep(stream_);
    timer_.BeginStep();
    // The index arrays go to the other of two device copies, uploaded on a stream of their own,
    // so that while the previous step still runs (pipelined decoding) this upload overlaps it
    // instead of waiting between the two steps; stream_ waits for it. The copy was last read by
    // the step before the previous one: released_ of it, recorded one BeginBatch ago.
    CUDA_CHECK(cudaEventRecord(released_[par_], stream_));  // everything so far on stream_
    par_ ^= 1;
    batch_ = &batches_[par_];
    // With tokens_from_last_step the tokens are the last ArgMaxAsync's ids, still on the device:
    // where that step wrote them (this copy's token array, see StartArgMax) they stay (the upload
    // skips them), else they are copied there (stream order puts it after that step). An upload
    // that writes the tokens waits for all of stream_ (the previous step writes its ids there).
    const int64_t T = (int64_t)meta.tokens.size();
    PETREL_CHECK(!meta.tokens_from_last_step || fed_rows_ >= T)
        << "tokens_from_last_step: " << T << " rows, " << fed_rows_ << " ids of the last ArgMaxAsync";
    const bool in_place = meta.tokens_from_last_step && fed_from_ == batch_->tokens;
    CUDA_CHECK(cudaStreamWaitEvent(upload_stream_, released_[in_place ? par_ : par_ ^ 1]));
    if (!in_place && last_readback_)  // an ArgMaxAsync's copy to the host may read the tokens
      CUDA_CHECK(cudaStreamWaitEvent(upload_stream_, last_readback_));
    cuda::UploadBatch(meta, *batch_, upload_stream_, in_place);
    CUDA_CHECK(cudaStreamWaitEvent(stream_, batch_->uploaded));
    if (meta.tokens_from_last_step && !in_place)
      CUDA_CHECK(cudaMemcpyAsync(const_cast<int32_t*>(batch_->tokens), fed_from_,
                                 T * sizeof(int32_t), cudaMemcpyDeviceToDevice, stream_));
    // Decode-shaped steps (one new token per sequence) are recorded or replayed as a graph.
    bool decode = !meta.seqs.empty() && meta.tokens.size() == meta.seqs.size() &&
                  meta.tokens.size() <= kMaxGraphRows;
    for (const AttentionSeq& s : meta.seqs) decode = decode && s.q_len == 1;
    graphs_.Begin(decode && graphs_enabled_,
                  (int64_t)meta.tokens.size() * 2 + par_);  // a graph per row count and copy
  }

  void Embedding(TensorView out, TensorView table, std::span<const int32_t> ids) override {
    const int32_t* d_ids = DeviceIds(ids);
    const int n = (int)ids.size();
    const int64_t d = table.dim(1);
    float* o = out.As<float>();
    const void* tb = table.data;
    const Elem te = ElemOf(table.dtype);
    Submit(MakeKey(OpCode::kEmbedding, o, tb, (int)te, d_ids, n, d), [=](cudaStream_t s) {
      cuda::LaunchEmbedding(o, tb, te, d_ids, n, d, s);
    });
  }

  void RmsNorm(TensorView out, TensorView x, TensorView w, float eps) override {
    const int64_t d = w.dim(0);
    const int64_t rows = x.NumElements() / d;
    float* o = out.As<float>();
    const float* xp = x.As<float>();
    const void* wp = w.data;
    const Elem we = ElemOf(w.dtype);
    if (pending_ == Pending::kAdd && xp == pend_add_x_ && rows * d == pend_add_n_ &&
        !Overlaps(o, rows * d * 4, pend_add_x_, rows * d * 4) &&
        !Overlaps(o, rows * d * 4, pend_add_y_, rows * d * 4)) {
      // Residual add + RMSNorm of the sum, one kernel (see LaunchAddRmsNorm).
      pending_ = Pending::kNone;
      float* xs = pend_add_x_;
      const float* ys = pend_add_y_;
      Submit(MakeKey(OpCode::kAddRmsNorm, o, xs, ys, wp, (int)we, rows, d, eps),
             [=](cudaStream_t s) { cuda::LaunchAddRmsNorm(o, xs, ys, wp, we, rows, d, eps, s); });
      return;
    }
    if (o != xp && rows <= cuda::kGemvMaxRows && d % 8 == 0 && w.dtype == DType::kF32 &&
        !Overlaps(o, rows * d * 4, xp, rows * d * 4)) {
      // Deferred: the MatMuls that read `out` next compute it themselves (GemvGroup::norm_x).
      FlushPending();
      pending_ = Pending::kNorm;
      pend_norm_ = PendNorm{o, xp, w.As<float>(), rows, d, eps};
      return;
    }
    if (o == xp && d % 2 == 0 && d <= cuda::kMaxHeadOpsDim && w.dtype == DType::kF32) {
      HeadEntry* e = JoinHeads(o, rows * d, d);  // q/k norm: deferred, see FlushHeads
      e->norm_w = w.As<float>();
      e->eps = eps;
      return;
    }
    Submit(MakeKey(OpCode::kRmsNorm, o, xp, wp, (int)we, rows, d, eps), [=](cudaStream_t s) {
      cuda::LaunchRmsNorm(o, xp, wp, we, rows, d, eps, s);
    });
  }

  void MatMul(TensorView out, TensorView x, TensorView w, TensorView bias) override {
    cuda::MatMulArgs a;
    a.K = w.dim(1);
    a.N = w.dim(0);
    a.T = x.NumElements() / a.K;
    PETREL_CHECK(out.NumElements() == a.T * a.N) << "MatMul out " << out.shape.ToString();
    PETREL_CHECK(bias.empty() || bias.dtype == DType::kF32) << "MatMul bias must be uploaded (f32)";
    a.out = out.As<float>();
    a.x = x.As<float>();
    a.w = w.data;
    a.w_elem = ElemOf(w.dtype);
    a.bias = bias.empty() ? nullptr : bias.As<float>();
    const size_t scratch = cuda::MatMulScratchBytes(a.T, a.K, a.w_elem);
    if (scratch > 0) {
      x16_.Reserve(scratch);
      a.x16 = x16_.get();
    }
    {
      if (cuda::GemvGroupable(a.x, a.w, a.T, a.K) &&
          !Overlaps(a.out, a.T * a.N * 4, a.x, a.T * a.K * 4)) {
        bool join = pending_ == Pending::kGemv && pend_x_ == a.x && pend_T_ == a.T &&
                          pend_K_ == a.K && pend_elem_ == a.w_elem &&
                          pend_g_.n_segs < cuda::kMaxGemvSegs && !pend_g_.residual &&
                          !pend_g_.silu_out && !pend_g_.amax;
        for (int i = 0; join && i < pend_g_.n_segs; ++i)
          join = !Overlaps(a.out, a.T * a.N * 4, pend_g_.seg[i].out, a.T * pend_g_.seg[i].n * 4);
        if (join && pend_g_.norm_x)
          join = !Overlaps(a.out, a.T * a.N * 4, pend_g_.norm_x, a.T * a.K * 4);
        if (!join) {
          // A deferred RmsNorm whose output is this input becomes the group's prologue.
          const bool norm = pending_ == Pending::kNorm && pend_norm_.out == a.x &&
                            pend_norm_.d == a.K && pend_norm_.rows == a.T &&
                            (uintptr_t)pend_norm_.x % 16 == 0 &&
                            (uintptr_t)pend_norm_.w % 16 == 0 &&
                            !Overlaps(a.out, a.T * a.N * 4, pend_norm_.x, a.T * a.K * 4);
          const PendNorm nm = pend_norm_;
          if (norm) pending_ = Pending::kNone;
          FlushPending();
          pending_ = Pending::kGemv;
          pend_g_ = cuda::GemvGroup{};
          pend_x_ = a.x, pend_T_ = a.T, pend_K_ = a.K, pend_elem_ = a.w_elem;
          if (norm) pend_g_.norm_x = nm.x, pend_g_.norm_w = nm.w, pend_g_.norm_eps = nm.eps;
        }
        cuda::GemvSeg& sg = pend_g_.seg[pend_g_.n_segs];
        const int64_t begin = pend_g_.n_segs ? pend_g_.seg[pend_g_.n_segs - 1].begin +
                                                   pend_g_.seg[pend_g_.n_segs - 1].n
                                             : 0;
        sg = cuda::GemvSeg{a.out, a.w, a.bias, begin, a.N};
        ++pend_g_.n_segs;
        return;
      }
    }
    cublasHandle_t h = cublas_;
    Submit(MakeKey(OpCode::kMatMul, a.out, a.x, a.w, (int)a.w_elem, a.bias, a.T, a.K, a.N, a.x16),
           [=](cudaStream_t s) { cuda::MatMul(a, h, s); });
  }

  void Rope(TensorView x, int n_heads, int head_dim, std::span<const int32_t> positions,
            const RopeTable& rope) override {
    cuda::RopeArgs a;
    a.x = x.As<float>();
    a.positions = DeviceIds(positions);
    a.inv_freq = rope_.InvFreq(rope);
    a.n_tokens = (int64_t)positions.size();
    a.n_heads = n_heads;
    a.head_dim = head_dim;
    a.attention_scaling = rope.attention_scaling;
    if (head_dim % 2 == 0 && head_dim <= cuda::kMaxHeadOpsDim) {
      // Deferred with the q/k norms (see FlushHeads); other rope parameters start a new batch.
      if (pending_ == Pending::kHeads && heads_.positions &&
          (heads_.positions != a.positions || heads_.inv_freq != a.inv_freq ||
           heads_.scaling != a.attention_scaling || heads_.T != a.n_tokens))
        FlushPending();
      const int64_t n = a.n_tokens * n_heads * head_dim;
      HeadEntry* e = Find(a.x);
      if (!e || e->rope || e->n != n || e->d != head_dim) e = JoinHeads(a.x, n, head_dim);
      e->rope = true;
      e->n_heads = n_heads;
      heads_.positions = a.positions, heads_.inv_freq = a.inv_freq;
      heads_.scaling = a.attention_scaling, heads_.T = a.n_tokens;
      return;
    }
    Submit(MakeKey(OpCode::kRope, a.x, a.positions, a.inv_freq, a.n_tokens, n_heads, head_dim,
                   a.attention_scaling),
           [=](cudaStream_t s) { cuda::LaunchRope(a, s); });
  }

  void Add(TensorView x, TensorView y) override {
    float* xp = x.As<float>();
    const float* yp = y.As<float>();
    const int64_t n = x.NumElements();
    if (pending_ == Pending::kGemv && pend_g_.n_segs == 1 && pend_g_.seg[0].out == yp &&
        pend_T_ * pend_g_.seg[0].n == n && !pend_g_.residual && !pend_g_.silu_out &&
        !pend_g_.amax && !Overlaps(xp, n * 4, yp, n * 4) &&
        !Overlaps(xp, n * 4, pend_x_, pend_T_ * pend_K_ * 4) &&
        !(pend_g_.norm_x && Overlaps(xp, n * 4, pend_g_.norm_x, pend_T_ * pend_K_ * 4))) {
      pend_g_.residual = xp;  // the GEMV that produced y adds it to x in its epilogue
      return;
    }
    // Deferred: a following RmsNorm of x fuses with it (see RmsNorm), anything else flushes it.
    FlushPending();
    pending_ = Pending::kAdd;
    pend_add_x_ = xp, pend_add_y_ = yp, pend_add_n_ = n;
  }

  void SiluMul(TensorView out, TensorView gate, TensorView up) override {
    float* o = out.As<float>();
    const float* g = gate.As<float>();
    const float* u = up.As<float>();
    const int64_t n = out.NumElements();
    if (pending_ == Pending::kGemv && pend_g_.n_segs == 2 && pend_g_.seg[0].out == g &&
        pend_g_.seg[1].out == u && pend_g_.seg[0].n == pend_g_.seg[1].n &&
        pend_T_ * pend_g_.seg[0].n == n && !pend_g_.silu_out && !pend_g_.amax &&
        !Overlaps(o, n * 4, pend_x_, pend_T_ * pend_K_ * 4)) {
      pend_g_.silu_out = o;  // the gate/up GEMVs write silu(gate) * up too (one launch)
      FlushPending();
      return;
    }
    Submit(MakeKey(OpCode::kSiluMul, o, g, u, n),
           [=](cudaStream_t s) { cuda::LaunchSiluMul(o, g, u, n, s); });
  }

  void StoreKv(KvCache& cache, int layer, TensorView k, TensorView v,
               std::span<const int64_t> slots) override {
    auto& c = static_cast<CudaKvCache&>(cache);
    const int64_t* d_slots = DeviceSlots(slots);
    void* kp = c.k(layer);
    void* vp = c.v(layer);
    const Elem e = ElemOf(c.layout().dtype);
    const float* kx = k.As<float>();
    const float* vx = v.As<float>();
    const int n = (int)slots.size();
    const int64_t row = (int64_t)c.layout().n_kv_heads * c.layout().head_dim;
    if (d_slots != batch_->slots) kv_adhoc_store_ = true;  // not this step's new tokens
    if (pending_ == Pending::kHeads && heads_.T == n && heads_.d == c.layout().head_dim &&
        AllRoped() && !Find(const_cast<float*>(vx))) {
      // This layer's q/k norms and ropes, then the store: one HeadOps launch, or none when the
      // decode attention that normally follows does them (see Attention). Still deferred: any
      // other op runs it first (Submit).
      HeadEntry* ke = Find(const_cast<float*>(kx));
      if (!ke || ke->n == n * row) {
        heads_.store = true;
        heads_.kv = {kp, vp, e, kx, vx, d_slots, row, ke ? (int)(ke - heads_.e) : -1};
        return;
      }
    }
    Submit(MakeKey(OpCode::kStoreKv, kp, vp, (int)e, kx, vx, d_slots, n, row), [=](cudaStream_t s) {
      cuda::LaunchStoreKv(kp, vp, e, kx, vx, d_slots, n, row, s);
    });
  }

  void Attention(TensorView out, TensorView q, const KvCache& cache,
                 std::span<const AttentionSeq> seqs, const AttentionParams& p) override {
    const auto& c = static_cast<const CudaKvCache&>(cache);
    const DeviceBatch& b = DeviceSeqs(seqs);
    cuda::PagedAttentionArgs a;
    a.out = out.As<float>();
    a.q = q.As<float>();
    a.k_pool = c.k(p.layer);
    a.v_pool = c.v(p.layer);
    a.kv_elem = ElemOf(c.layout().dtype);
    a.row_seq = b.row_seq;
    a.seq_info = b.seq_info;
    a.block_tables = b.block_tables;
    a.table_stride = b.table_stride;
    a.n_rows = (int)b.n_rows;
    a.block_size = c.layout().block_size;
    a.n_heads = p.n_heads;
    a.n_kv_heads = p.n_kv_heads;
    a.head_dim = p.head_dim;
    a.scale = p.scale;
    a.sliding_window = p.sliding_window;
    // Partitions cover the table's capacity (stride * block_size tokens), not this step's
    // lengths, so the launch (and a graph holding it) stays the same while contexts grow.
    const int64_t capacity = (int64_t)b.table_stride * a.block_size;
    if (b.all_decode && cuda::DecodeAttentionSupported(a)) {  // see decode_attention.cuh
      const int split = cuda::DecodeSplit(a);
      const int n_splits = (int)((capacity + split - 1) / split);
      // Up to 8 rows, the splits are merged by a second kernel (decode_attention.cuh);
      // PETREL_CUDA_DECODE_MERGE=block|kernel forces one way.
      static const int merge_env = [] {
        const char* v = std::getenv("PETREL_CUDA_DECODE_MERGE");
        return !v ? 0 : std::string_view(v) == "kernel" ? 1 : std::string_view(v) == "block" ? 2 : 0;
      }();
      const bool merge_kernel = merge_env ? merge_env == 1 : a.n_rows <= 8;
      const int64_t part_floats = cuda::DecodePartFloats(a, n_splits);
      attn_parts_.Reserve((part_floats + (int64_t)a.n_rows * a.n_heads * a.head_dim) * sizeof(float));
      const size_t ctr_bytes = cuda::DecodeCounters(a) * sizeof(unsigned);
      if (attn_counters_.bytes() < ctr_bytes) {
        attn_counters_.Reserve(ctr_bytes);
        CUDA_CHECK(cudaMemsetAsync(attn_counters_.get(), 0, attn_counters_.bytes(), stream_));
      }
      const bool pf = !kv_adhoc_store_;  // KV of earlier positions settled (see the kernel)
      cuda::DecodeAttentionScratch sc;
      sc.part_out = static_cast<float*>(attn_parts_.get());
      sc.part_ml = sc.part_out + (int64_t)a.n_rows * a.n_heads * n_splits * a.head_dim;
      sc.counters = static_cast<unsigned*>(attn_counters_.get());
      sc.merge_kernel = merge_kernel;
      sc.q_rot = static_cast<float*>(attn_parts_.get()) + part_floats;
      cuda::DecodeHeadOps h = pf ? TakeHeadsFor(a, p) : cuda::DecodeHeadOps{};
      if (h.on) h.rope_cs = RopeTableFor(h, a.n_rows, a.head_dim / 2);
      Submit(MakeKey(OpCode::kAttention, a.out, a.q, a.k_pool, (int)a.kv_elem, a.row_seq,
                     a.block_tables, a.table_stride, a.n_rows, a.block_size,
                     (int64_t)a.n_heads << 32 | a.n_kv_heads, a.head_dim, a.scale,
                     a.sliding_window, n_splits, sc.part_out, sc.counters, pf ? -1 : -2, h.k,
                     h.v, h.q_norm_w, h.k_norm_w, h.q_eps, h.k_eps, h.positions, h.inv_freq,
                     h.attention_scaling, h.slots, h.rope_cs, sc.merge_kernel),
             [=](cudaStream_t s) { cuda::LaunchDecodeAttention(a, n_splits, sc, pf, s, h); });
      return;
    }
    a.n_seqs = (int)seqs.size();
    const int rpt = cuda::PrefillTileRows(a);
    int n_tiles = 0;
    for (const AttentionSeq& sq : seqs) n_tiles += (sq.q_len + rpt - 1) / rpt;
    // The tiled kernel (see prefill_attention.cuh) once it has blocks for every SM twice over; a
    // short prompt alone (32 blocks for 128 tokens of Qwen3-0.6B) runs faster on the per-row one.
    if (!b.all_decode && cuda::PrefillAttentionSupported(a) &&
        (int64_t)n_tiles * a.n_kv_heads >= prefill_min_blocks_) {
      Submit(MakeKey(OpCode::kAttention, a.out, a.q, a.k_pool, (int)a.kv_elem, a.row_seq,
                     a.block_tables, a.table_stride, a.n_rows, a.block_size,
                     (int64_t)a.n_heads << 32 | a.n_kv_heads, a.head_dim, a.scale,
                     a.sliding_window, (int64_t)a.n_seqs << 32 | n_tiles, -3),
             [=](cudaStream_t s) { cuda::LaunchPrefillAttention(a, n_tiles, s); });
      return;
    }
    a.n_parts = (int)((capacity + cuda::kPartition - 1) / cuda::kPartition);
    if (a.n_parts > 1) {
      const size_t per = (size_t)a.n_rows * a.n_heads * a.n_parts;
      attn_parts_.Reserve(per * (a.head_dim + 2) * sizeof(float));
      a.part_out = static_cast<float*>(attn_parts_.get());
      a.part_ml = a.part_out + per * a.head_dim;
    }
    Submit(MakeKey(OpCode::kAttention, a.out, a.q, a.k_pool, (int)a.kv_elem, a.row_seq,
                   a.block_tables, a.table_stride, a.n_rows, a.block_size,
                   (int64_t)a.n_heads << 32 | a.n_kv_heads, a.head_dim, a.scale, a.sliding_window,
                   a.n_parts, a.part_out),
           [=](cudaStream_t s) { cuda::LaunchPagedAttention(a, s); });
  }

  void GatherRows(TensorView out, TensorView x, std::span<const int32_t> rows) override {
    const int32_t* d_rows = DeviceIds(rows);
    float* o = out.As<float>();
    const float* xp = x.As<float>();
    const int n = (int)rows.size();
    const int64_t d = x.dim(x.shape.rank - 1);
    Submit(MakeKey(OpCode::kGatherRows, o, xp, d_rows, n, d),
           [=](cudaStream_t s) { cuda::LaunchGatherRows(o, xp, d_rows, n, d, s); });
  }

  void ToHost(TensorView src, float* dst) override {
    OnDevice();
    FlushPending();
    FinishStep();
    batch_->host = BatchMetadata{};  // the step's host arrays may die now: forget their addresses
    const size_t bytes = src.NumElements() * sizeof(float);
    if (bytes <= kStagedCopyMax) {
      to_host_.Reserve(bytes);
      CUDA_CHECK(cudaMemcpyAsync(to_host_.get(), src.data, bytes, cudaMemcpyDeviceToHost, stream_));
      CUDA_CHECK(cudaStreamSynchronize(stream_));
      std::memcpy(dst, to_host_.get(), bytes);
    } else {  // large (batched logits): straight into pageable memory, no second host copy
      CUDA_CHECK(cudaMemcpyAsync(dst, src.data, bytes, cudaMemcpyDeviceToHost, stream_));
      CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
  }

  // A pipelined step's results to the host (ArgMaxAsync, SampleRowsAsync): `copy` enqueued on
  // the readback stream behind the step, off the path to the next step, then `done` recorded;
  // its ids (`rows` at `ids`, on the device) are what the next step may be fed. Nothing
  // overwrites them before the copy is done: the next step reads them, the one after writes the
  // other copy's tokens, and a third async result needs this one taken first.
  template <typename F>
  void ReadBack(cudaEvent_t done, const int32_t* ids, int64_t rows, F&& copy) {
    CUDA_CHECK(cudaEventRecord(step_done_, stream_));
    CUDA_CHECK(cudaStreamWaitEvent(readback_stream_, step_done_));
    copy(readback_stream_);
    CUDA_CHECK(cudaEventRecord(done, readback_stream_));
    last_readback_ = done;
    fed_rows_ = rows;
    fed_from_ = ids;
  }

  // ArgMax's device part: the ids of every row into ids_dev_ (by the LM head's GEMV when it is
  // the pending op, else a kernel), the step finished (its graph launched); returns them and R.
  std::pair<int32_t*, int64_t> StartArgMax(TensorView logits) {
    OnDevice();
    const int64_t V = logits.dim(logits.shape.rank - 1);
    const int64_t R = logits.NumElements() / V;
    // Into the token array of the next step's copy (BeginBatch alternates them) when it has
    // room, so that a pipelined next step finds them in place; else a buffer of their own.
    const DeviceBatch& next = batches_[par_ ^ 1];
    int32_t* d_ids = const_cast<int32_t*>(next.tokens);
    if (!d_ids || R > next.cap_rows) {
      ids_dev_.Reserve(std::max<int64_t>(R, 4096) * sizeof(int32_t));
      d_ids = static_cast<int32_t*>(ids_dev_.get());
    }
    const float* lp = logits.As<float>();
    if (pending_ == Pending::kGemv && pend_g_.n_segs == 1 && pend_g_.seg[0].out == lp &&
        pend_g_.seg[0].n == V && pend_T_ == R && !pend_g_.silu_out) {
      // The LM head's GEMV reduces each row's argmax in its blocks (one launch).
      pend_g_.amax = static_cast<unsigned long long*>(amax_buf_.get());
      pend_g_.amax_counter = reinterpret_cast<unsigned*>(pend_g_.amax + cuda::kGemvMaxRows);
      pend_g_.amax_ids = d_ids;
    } else {
      // Part of the step (and its graph): the ids buffer and the logits stay put across steps.
      Submit(MakeKey(OpCode::kArgMax, d_ids, lp, R, V),
             [=](cudaStream_t s) { cuda::LaunchArgMax(d_ids, lp, R, V, s); });
    }
    FlushPending();
    FinishStep();
    batch_->host = BatchMetadata{};
    return {d_ids, R};
  }

  void ArgMax(TensorView logits, int32_t* ids) override {
    const auto [d_ids, R] = StartArgMax(logits);
    fed_rows_ = 0;  // its ids may overwrite the last ArgMaxAsync's
    const size_t bytes = R * sizeof(int32_t);
    to_host_.Reserve(bytes);
    CUDA_CHECK(cudaMemcpyAsync(to_host_.get(), d_ids, bytes, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::memcpy(ids, to_host_.get(), bytes);
  }

  // The ids go to the host behind the step in stream order (a pinned slot and an event per
  // outstanding result); the next step's BeginBatch may feed them to its tokens on the device.
  void ArgMaxAsync(TensorView logits) override {
    PETREL_CHECK(!async_ids_.full())
        << "ArgMaxAsync: " << kMaxArgMaxInFlight << " results not yet taken";
    const auto [d_ids, R] = StartArgMax(logits);
    AsyncIds& slot = async_ids_.Push();
    slot.rows = R;
    slot.host.Reserve(R * sizeof(int32_t));
    ReadBack(slot.done, d_ids, R, [&](cudaStream_t s) {
      CUDA_CHECK(cudaMemcpyAsync(slot.host.get(), d_ids, R * sizeof(int32_t),
                                 cudaMemcpyDeviceToHost, s));
    });
  }

  void TakeArgMax(int32_t* ids) override {
    OnDevice();
    PETREL_CHECK(!async_ids_.empty()) << "TakeArgMax: no ArgMaxAsync outstanding";
    AsyncIds& slot = async_ids_.Front();
    CUDA_CHECK(cudaEventSynchronize(slot.done));
    std::memcpy(ids, slot.host.get(), slot.rows * sizeof(int32_t));
    async_ids_.Pop();
  }

  bool FeedsStepTokens() const override { return true; }

  MemoryInfo QueryMemory() override {
    OnDevice();
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return MemoryInfo{(int64_t)free_b, (int64_t)total_b};
  }

  Tensor UploadOwned(TensorView host) override {
    // Any thread: only thread-safe runtime calls, nothing of the backend's own state.
    CUDA_CHECK(cudaSetDevice(device_));
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(host.NumBytes(), 1)));
    CUDA_CHECK(cudaMemcpy(p, host.data, host.NumBytes(), cudaMemcpyHostToDevice));
    auto free_on = [](void* ctx, void* data) {
      cudaSetDevice((int)(intptr_t)ctx);
      cudaFree(data);
    };
    return Tensor(p, host.dtype, host.shape, free_on, (void*)(intptr_t)device_);
  }

  bool SampleRows(TensorView logits, std::span<const SampleSpec> specs,
                  std::span<SampleResult> out) override {
    const StartedSample st = StartSample(logits, specs);
    PETREL_CHECK((int64_t)out.size() == st.R) << "SampleRows: " << st.R << " rows";
    fed_rows_ = 0;  // its ids may overwrite the last async result's
    samples_.CopyBack(st.par, st.R, st.any_top, stream_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    samples_.Read(st.par, st.V, specs, out);
    return true;
  }

  // Like ArgMaxAsync, for SampleRows: the results reach the host behind the step on the readback
  // stream, the ids also go into the next step's token array (tokens_from_last_step feeds them).
  bool SampleRowsAsync(TensorView logits, std::span<const SampleSpec> specs) override {
    PETREL_CHECK(!async_samples_.full())
        << "SampleRowsAsync: " << kMaxArgMaxInFlight << " results not yet taken";
    const StartedSample st = StartSample(logits, specs, /*feed=*/true);
    AsyncSample& a = async_samples_.Push();
    a.par = st.par;
    a.V = st.V;
    a.specs.assign(specs.begin(), specs.end());
    ReadBack(a.done, st.o.feed ? st.o.feed : st.o.ids, st.R, [&](cudaStream_t s) {
      samples_.CopyBack(st.par, st.R, st.any_top, s);
    });
    return true;
  }

  void TakeSampled(std::span<SampleResult> out) override {
    OnDevice();
    PETREL_CHECK(!async_samples_.empty()) << "TakeSampled: no SampleRowsAsync outstanding";
    AsyncSample& a = async_samples_.Front();
    PETREL_CHECK(out.size() == a.specs.size()) << "TakeSampled: " << a.specs.size() << " rows";
    CUDA_CHECK(cudaEventSynchronize(a.done));
    samples_.Read(a.par, a.V, a.specs, out);
    async_samples_.Pop();
  }

  bool SamplesAsync() const override { return true; }

 private:
  static constexpr size_t kCublasWorkspace = 32u << 20;
  static constexpr size_t kStagedCopyMax = 4u << 20;
  static constexpr int64_t kMaxGraphRows = 512;

  struct StartedSample {
    cuda::SampleOutputs o;
    int64_t R = 0, V = 0;
    bool any_top = false;
    int par = 0;
  };
  struct AsyncSample {
    int par = 0;
    int64_t V = 0;
    std::vector<SampleSpec> specs;
    cudaEvent_t done = nullptr;
  };
  // The sampling kernel for `specs` enqueued (its parameters uploaded on the upload stream
  // first) and the step finished (its graph launched); `feed`: the ids also go into the next
  // step's token array where it has room.
  StartedSample StartSample(TensorView logits, std::span<const SampleSpec> specs, bool feed = false) {
    OnDevice();
    const int64_t V = logits.dim(logits.shape.rank - 1);
    const int64_t R = logits.NumElements() / V;
    PETREL_CHECK((int64_t)specs.size() == R) << "SampleRows: " << R << " rows";
    samples_.Reserve(R);
    StartedSample st;
    st.R = R;
    st.V = V;
    st.par = par_;
    cuda::SampleRowParams* params = samples_.DeviceParams(par_);
    st.o = samples_.Outputs(par_);
    const DeviceBatch& next = batches_[par_ ^ 1];
    if (feed && next.tokens && R <= next.cap_rows) st.o.feed = const_cast<int32_t*>(next.tokens);
    st.any_top = samples_.FillParams(par_, specs);
    // Not part of a decode graph: the parameters are copied on the upload stream once the step
    // before the previous one (the last reader of this set) is done, and the step waits for them.
    CUDA_CHECK(cudaStreamWaitEvent(upload_stream_, released_[par_]));
    CUDA_CHECK(cudaMemcpyAsync(params, samples_.HostParams(par_), R * sizeof(cuda::SampleRowParams),
                               cudaMemcpyHostToDevice, upload_stream_));
    CUDA_CHECK(cudaEventRecord(params_up_, upload_stream_));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, params_up_));
    const float* lp = logits.As<float>();
    const cuda::SampleOutputs o = st.o;
    Submit(MakeKey(OpCode::kSample, lp, R, V, params, o.ids, o.top_ids, o.feed),
           [=](cudaStream_t s) { cuda::LaunchSample(lp, R, V, params, o, s); });
    FlushPending();
    FinishStep();
    batch_->host = BatchMetadata{};
    return st;
  }

  // Enqueues the deferred op, if any: a group of GEMVs on one input (consecutive MatMuls with
  // T <= 8 on the same x, e.g. q/k/v or gate/up, one launch) or a residual Add that no RmsNorm
  // followed. Every op that is not deferred runs this first (Submit), as do BeginBatch and ToHost,
  // so the stream order is the order the ops were called in.
  void FlushPending() {
    const Pending p = pending_;
    pending_ = Pending::kNone;
    if (p == Pending::kGemv) {
      const cuda::GemvGroup g = pend_g_;
      const float* x = pend_x_;
      const int64_t T = pend_T_, K = pend_K_;
      const Elem e = pend_elem_;
      const cuda::GemvSeg* sg = g.seg;
      Submit(MakeKey(OpCode::kGemvGroup, x, T << 40 | (int64_t)e << 36 | (int64_t)g.n_segs << 32 | K,
                     sg[0].out, sg[0].w, sg[0].bias, sg[0].n, sg[1].out, sg[1].w, sg[1].bias,
                     sg[1].n, sg[2].out, sg[2].w, sg[2].bias, sg[2].n, g.silu_out, g.residual,
                     g.amax_ids, g.norm_x, g.norm_w, g.norm_eps),
             [=](cudaStream_t s) { cuda::LaunchGemvGroup(g, e, x, T, K, s); });
    } else if (p == Pending::kHeads) {
      FlushHeads();
    } else if (p == Pending::kNorm) {
      const PendNorm nm = pend_norm_;
      Submit(MakeKey(OpCode::kRmsNorm, nm.out, nm.x, nm.w, (int)Elem::kF32, nm.rows, nm.d, nm.eps),
             [=](cudaStream_t s) {
               cuda::LaunchRmsNorm(nm.out, nm.x, nm.w, Elem::kF32, nm.rows, nm.d, nm.eps, s);
             });
    } else if (p == Pending::kAdd) {
      float* xp = pend_add_x_;
      const float* yp = pend_add_y_;
      const int64_t n = pend_add_n_;
      Submit(MakeKey(OpCode::kAdd, xp, yp, n),
             [=](cudaStream_t s) { cuda::LaunchAdd(xp, yp, n, s); });
    }
  }

  // Deferred per-head ops (pending_heads.h): collected as they are called, run by FlushHeads
  // or handed to the decode attention (TakeHeadsFor).
  // The pending head ops as a DecodeHeadOps for the decode attention about to run (then no longer
  // pending) when they are exactly this layer's (see ToDecodeHeadOps); else {}, still pending.
  cuda::DecodeHeadOps TakeHeadsFor(const cuda::PagedAttentionArgs& a, const AttentionParams& p) {
    static const bool enabled = [] {  // PETREL_CUDA_FUSE_HEADS=0: a HeadOps launch (to measure)
      const char* v = std::getenv("PETREL_CUDA_FUSE_HEADS");
      return !(v && v[0] == '0');
    }();
    // Only for a few rows: there the separate launch is a step's latency, while in large batches
    // every split block redoing its query heads' norm and rope costs more than the launch (H100,
    // Qwen3-0.6B: batch 1 +5%, 8 +2%, but 32 -6%, 256 -6%).
    if (!enabled || pending_ != Pending::kHeads || a.n_rows > 8 || !cuda::DecodeHeadOpsSupported(a))
      return {};
    const cuda::DecodeHeadOps o = ToDecodeHeadOps(heads_, a, p.n_heads, p.n_kv_heads, batch_->slots);
    if (o.on) {
      pending_ = Pending::kNone;
      heads_ = PendingHeads{};
    }
    return o;
  }

  HeadEntry* Find(const float* x) { return pending_ == Pending::kHeads ? heads_.Find(x) : nullptr; }
  bool AllRoped() const { return heads_.AllRoped(); }
  // A new entry for x (n elements, heads of d) in the pending head ops; runs the pending ops first
  // when x overlaps an entry already there, the batch is full or its head size differs.
  HeadEntry* JoinHeads(float* x, int64_t n, int d) {
    bool fresh = pending_ != Pending::kHeads || heads_.n == cuda::kMaxHeadOpsEntries || heads_.d != d;
    for (int i = 0; !fresh && i < heads_.n; ++i)
      fresh = Overlaps(x, n * 4, heads_.e[i].x, heads_.e[i].n * 4);
    if (fresh) {
      FlushPending();
      pending_ = Pending::kHeads;
      heads_ = PendingHeads{};
      heads_.d = d;
    }
    HeadEntry& e = heads_.e[heads_.n++];
    e = HeadEntry{};
    e.x = x, e.n = n, e.d = d;
    return &e;
  }
  void FlushHeads() {
    const PendingHeads h = heads_;
    heads_ = PendingHeads{};
    bool fused = h.n > 0;
    for (int i = 0; i < h.n; ++i) fused = fused && h.e[i].rope;
    if (!fused) {
      for (int i = 0; i < h.n; ++i) {
        const HeadEntry& e = h.e[i];
        float* x = e.x;
        if (e.norm_w) {
          const float* w = e.norm_w;
          const int64_t rows = e.n / e.d, d = e.d;
          const float eps = e.eps;
          Submit(MakeKey(OpCode::kRmsNorm, x, x, w, (int)Elem::kF32, rows, d, eps),
                 [=](cudaStream_t s) { cuda::LaunchRmsNorm(x, x, w, Elem::kF32, rows, d, eps, s); });
        }
        if (e.rope) {
          cuda::RopeArgs a;
          a.x = x, a.positions = h.positions, a.inv_freq = h.inv_freq, a.n_tokens = h.T;
          a.n_heads = e.n_heads, a.head_dim = e.d, a.attention_scaling = h.scaling;
          Submit(MakeKey(OpCode::kRope, a.x, a.positions, a.inv_freq, a.n_tokens, a.n_heads,
                         a.head_dim, a.attention_scaling),
                 [=](cudaStream_t s) { cuda::LaunchRope(a, s); });
        }
      }
      return;
    }
    cuda::HeadOpsArgs a;
    a.n_entries = h.n;
    for (int i = 0; i < h.n; ++i) a.e[i] = {h.e[i].x, h.e[i].n_heads, h.e[i].norm_w, h.e[i].eps};
    a.n_tokens = h.T, a.head_dim = h.d;
    a.positions = h.positions, a.inv_freq = h.inv_freq, a.attention_scaling = h.scaling;
    if (h.store) {
      a.kv = h.kv;
    }
    const cuda::HeadOpsEntry& e0 = a.e[0];
    const cuda::HeadOpsEntry& e1 = a.e[1];
    Submit(MakeKey(OpCode::kHeadOps, e0.x, e0.norm_w, e0.eps, e1.x, e1.norm_w, e1.eps,
                   (int64_t)e0.n_heads << 32 | e1.n_heads, a.positions, a.inv_freq,
                   a.n_tokens << 16 | a.head_dim << 4 | a.n_entries, a.attention_scaling, a.kv.k_pool,
                   a.kv.v_pool, (int)a.kv.kv_elem << 8 | (a.kv.k_entry + 1), a.kv.k, a.kv.v,
                   a.kv.slots, a.kv.kv_row),
           [=](cudaStream_t s) { cuda::LaunchHeadOps(a, s); });
  }

  // The CUDA runtime's current device is per host thread: the entry points a thread may call
  // first (the engine thread's BeginBatch, the loader's uploads, the server's queries) make it
  // this backend's GPU (--device cuda:N) when it is not already.
  void OnDevice() const {
    int current = -1;
    CUDA_CHECK(cudaGetDevice(&current));
    if (current != device_) CUDA_CHECK(cudaSetDevice(device_));
  }

  // Runs, records or checks one op (see the file comment and StepGraphs).
  template <typename F>
  void Submit(const OpKey& key, F&& launch) {
    if (pending_ != Pending::kNone) FlushPending();
    graphs_.Submit(key, std::forward<F>(launch), stream_);
  }

  // Ends the current step: launches a fully matched graph, or captures a freshly recorded one.
  void FinishStep() { graphs_.Finish(stream_, timer_); }

  // Index arrays an op was given that BeginBatch did not announce: uploaded now, through a second
  // DeviceBatch. Graph replay stops for this step (the arrays' device copy would not be stable).
  DeviceBatch& UploadAdHoc(const BatchMetadata& meta) {
    FlushPending();  // a deferred op may hold pointers into the ad hoc copy about to be replaced
    graphs_.NotCapturable(stream_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // earlier ops may still read the ad hoc copy
    kv_adhoc_store_ = false;
    cuda::UploadBatch(meta, adhoc_, stream_);
    return adhoc_;
  }

  static bool Same(std::span<const int32_t> a, std::span<const int32_t> b) {
    return a.data() == b.data() && a.size() == b.size();
  }

  const int32_t* DeviceIds(std::span<const int32_t> ids) {
    if (ids.empty()) return nullptr;
    const BatchMetadata& m = batch_->host;
    if (Same(ids, m.tokens)) return batch_->tokens;
    if (Same(ids, m.positions)) return batch_->positions;
    if (Same(ids, m.logit_rows)) return batch_->logit_rows;
    return UploadAdHoc(BatchMetadata{.tokens = ids}).tokens;
  }

  const int64_t* DeviceSlots(std::span<const int64_t> slots) {
    if (slots.empty()) return nullptr;
    if (slots.data() == batch_->host.slots.data() && slots.size() == batch_->host.slots.size())
      return batch_->slots;
    return UploadAdHoc(BatchMetadata{.slots = slots}).slots;
  }

  const DeviceBatch& DeviceSeqs(std::span<const AttentionSeq> seqs) {
    if (seqs.data() == batch_->host.seqs.data() && seqs.size() == batch_->host.seqs.size())
      return *batch_;
    return UploadAdHoc(BatchMetadata{.seqs = seqs});
  }

  // The step's RoPE table for these head ops (rope_tables.h), launched on first use.
  const float2* RopeTableFor(const cuda::DecodeHeadOps& h, int64_t rows, int half) {
    bool compute = false;
    float2* out = rope_.StepTable(h.positions, h.inv_freq, h.attention_scaling, rows, half, compute);
    if (compute)
      Submit(MakeKey(OpCode::kRopeTable, out, h.positions, h.inv_freq, h.attention_scaling, rows,
                     half),
             [=, p = h.positions, f = h.inv_freq, sc = h.attention_scaling](cudaStream_t s) {
               cuda::LaunchRopeTable(out, p, f, sc, (int)rows, half, s);
             });
    return out;
  }

  int device_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DeviceBuffer cublas_workspace_;
  DevicePool pool_;
  std::vector<DeviceBuffer> weights_;
  cuda::RopeTables rope_;  // inv_freq uploads and the step's (cos, sin) table
  DeviceBuffer x16_;         // activations rounded to 16 bits for cuBLAS
  DeviceBuffer attn_parts_;  // split-K partials
  DeviceBuffer ids_dev_;     // ArgMax results
  cuda::SampleBuffers samples_;  // SampleRows' parameters and results, a set per batch copy
  cuda::ReadbackRing<AsyncSample> async_samples_;
  cudaEvent_t params_up_ = nullptr;  // SampleRows' parameters uploaded
  PinnedBuffer to_host_;
  // The step's index arrays, in two device copies used by alternate steps (see BeginBatch).
  DeviceBatch batches_[2];
  int par_ = 0;
  DeviceBatch* batch_ = &batches_[0];
  DeviceBatch adhoc_;
  cudaStream_t upload_stream_ = nullptr;    // BeginBatch's uploads
  cudaStream_t readback_stream_ = nullptr;  // ArgMaxAsync's copies to the host
  cudaEvent_t released_[2] = {};  // stream_'s last use of each copy (recorded by BeginBatch)
  cudaEvent_t step_done_ = nullptr;
  cudaEvent_t last_readback_ = nullptr;  // the last ArgMaxAsync's copy to the host
  struct AsyncIds {  // an ArgMaxAsync result on its way to the host
    PinnedBuffer host;
    cudaEvent_t done = nullptr;
    int64_t rows = 0;
  };
  cuda::ReadbackRing<AsyncIds> async_ids_;
  // The last ArgMaxAsync's ids on the device (for tokens_from_last_step), until an ArgMax.
  const int32_t* fed_from_ = nullptr;
  int64_t fed_rows_ = 0;

  enum class Pending { kNone, kGemv, kAdd, kHeads, kNorm };
  struct PendNorm {
    float* out = nullptr;
    const float* x = nullptr;
    const float* w = nullptr;
    int64_t rows = 0, d = 0;
    float eps = 0.0f;
  };
  PendNorm pend_norm_;
  Pending pending_ = Pending::kNone;
  PendingHeads heads_;
  DeviceBuffer amax_buf_;      // LM-head argmax keys and counter (see GemvGroup::amax)
  DeviceBuffer attn_counters_;  // decode attention split counters (zero between launches)
  cuda::StepTimer timer_;
  cuda::TraceRecorder tracer_;
  bool kv_adhoc_store_ = false;  // a StoreKv outside the step's slots since the stream last synced
  int64_t prefill_min_blocks_ = 264;  // tiled prefill attention from this many blocks (Attention)
  cuda::GemvGroup pend_g_;
  const float* pend_x_ = nullptr;
  int64_t pend_T_ = 0, pend_K_ = 0;
  Elem pend_elem_ = Elem::kF32;
  float* pend_add_x_ = nullptr;
  const float* pend_add_y_ = nullptr;
  int64_t pend_add_n_ = 0;
  bool graphs_enabled_ = true;
  cuda::StepGraphs graphs_;  // decode steps as CUDA graphs
};

}  // namespace

Result<std::unique_ptr<Backend>> CreateCudaBackend(int device) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    return NotFound("device cuda:", device, ": no usable CUDA device (", cudaGetErrorString(e), ")");
  if (device < 0 || device >= count)
    return NotFound("device cuda:", device, ": this machine has ", count, " CUDA device(s)");
  return std::unique_ptr<Backend>(new CudaBackend(device));
}

}  // namespace petrel::kernels
