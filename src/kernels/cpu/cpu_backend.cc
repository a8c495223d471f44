// The CPU backend: elementwise ops as plain loops (cheap next to the matmuls), matmul and attention
// through the per-ISA function pointers chosen once at construction, all split over a ThreadPool.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>

#include "core/thread_pool.h"
#include "core/vocab_scan.h"
#include "kernels/backend.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_bf16.h"
#include "kernels/cpu/quant_matmul.h"
#include "kernels/cpu/quant_matmul_packed.h"

namespace petrel::kernels {

namespace {

using cpu::Isa;

// Decode (T <= kDecodeMaxRows) matmul rows per chunk of ThreadPool::OwnedFor, shrinking to
// kDecodeGrain at the end of each thread's share (a multiple of the kernels' 4-row tiles): the
// threads of a region then finish within 16 rows (~32 KB of bf16 weights) of each other instead
// of 64.
constexpr int64_t kDecodeChunk = 64, kDecodeGrain = 16;

class CpuKvCache : public KvCache {
 public:
  explicit CpuKvCache(const KvCacheLayout& layout) {
    layout_ = layout;
    const Shape pool{layout.n_blocks, layout.n_kv_heads, layout.block_size, layout.head_dim};  // attention.h
    const Shape scales{layout.n_blocks, layout.block_size, layout.n_kv_heads};
    for (int l = 0; l < layout.n_layers; ++l) {
      k.emplace_back(layout.dtype, pool);
      v.emplace_back(layout.dtype, pool);
      if (layout.dtype == DType::kI8) {
        k_scale.emplace_back(DType::kF32, scales);
        v_scale.emplace_back(DType::kF32, scales);
      }
    }
    // Pools up to kPretouchBytes are touched now rather than page by page as decode fills new
    // slots: one fresh 4 KB page per kv head and layer every 16 tokens was ~28 page faults a
    // token for Qwen3-0.6B, several microseconds each on a virtual machine (perf: exc_page_fault
    // under StoreKv). A larger pool (one sized for a long max_model_len) is left to fault in as
    // it is used, so that it costs no memory up front. (Transparent huge pages instead: the
    // first touch of each 2 MB page ran into direct compaction, and decode got slower.)
    constexpr int64_t kPretouchBytes = 1ll << 30;
    int64_t total = 0;
    for (auto* pools : {&k, &v, &k_scale, &v_scale})
      for (const Tensor& t : *pools) total += (int64_t)t.NumBytes();
    if (total <= kPretouchBytes)
      for (auto* pools : {&k, &v, &k_scale, &v_scale})
        for (Tensor& t : *pools) std::memset(t.data(), 0, t.NumBytes());
  }
  std::vector<Tensor> k, v;              // per layer
  std::vector<Tensor> k_scale, v_scale;  // per layer, int8 caches only (core/kv_quant.h)
};

class CpuBackend : public Backend {
 public:
  CpuBackend(int n_threads, MatMulPrecision precision)
      : pool_(n_threads > 0 ? n_threads : ThreadPool::HardwareThreads()),
        isa_(cpu::SelectedIsa()),
        precision_(precision) {
    switch (isa_) {
      case Isa::kAvx512:
        matmul_ = cpu::MatMulAvx512;
        attention_ = cpu::AttentionAvx512;
        break;
      case Isa::kAvx2:
        matmul_ = cpu::MatMulAvx2;
        attention_ = cpu::AttentionGeneric;
        break;
      case Isa::kScalar:
        matmul_ = cpu::MatMulGeneric;
        attention_ = cpu::AttentionGeneric;
        break;
    }
  }

  const char* name() const override { return "cpu"; }

  // Q8_0 / Q4_0 / Q4_1 / Q8_A weights are replaced by a row-interleaved copy for the AVX-512 VNNI
  // kernels (quant_matmul_packed.h): the returned view is the packed buffer, which the model holds
  // instead of the plain tensor (whose memory the loader can then free).
  TensorView UploadWeight(TensorView host) override {
    if (isa_ == Isa::kAvx512)
      if (const cpu::PackedQuant* p = packed_.Add(host, pool_)) return cpu::PackedView(*p);
    return host;
  }

  Tensor Allocate(DType dtype, Shape shape) override { return Tensor(dtype, shape); }

  std::unique_ptr<KvCache> AllocateKvCache(const KvCacheLayout& layout) override {
    return std::make_unique<CpuKvCache>(layout);
  }

  void Embedding(TensorView out, TensorView table, std::span<const int32_t> ids) override {
    const int64_t d = table.dim(1);
    if (IsBlockQuantized(table.dtype))
      if (const cpu::PackedQuant* p = packed_.Find(table.data, table.dtype, table.dim(0), d))
        return cpu::PackedRowsToF32(*p, ids, out.As<float>());
    const size_t row_bytes = DTypeBytes(table.dtype, d);  // block types: whole blocks
    for (size_t t = 0; t < ids.size(); ++t) {
      const char* src = static_cast<const char*>(table.data) + (size_t)ids[t] * row_bytes;
      ConvertToF32(src, table.dtype, out.As<float>() + t * d, d);
    }
  }

  void RmsNorm(TensorView out, TensorView x, TensorView w, float eps) override {
    const int64_t d = w.dim(0);
    const int64_t rows = x.NumElements() / d;
    // f32 weights (GGUF norms, uploaded ones) are used in place; others converted once per call.
    std::vector<float> wconv;
    if (w.dtype != DType::kF32) {
      wconv.resize(d);
      ConvertToF32(w.data, w.dtype, wconv.data(), d);
    }
    const float* wf = w.dtype == DType::kF32 ? w.As<float>() : wconv.data();
    // Rows of at least 4096 elements per thread (a decode step's per-head q/k norms, 16 x 128,
    // run inline: a parallel region costs more than the work).
    pool_.ParallelFor(rows, std::max<int64_t>(8, 4096 / d), [&](int64_t b, int64_t e, int) {
      for (int64_t r = b; r < e; ++r) {
        const float* xr = x.As<float>() + r * d;
        float* o = out.As<float>() + r * d;
        if (isa_ == Isa::kAvx512) cpu::RmsNormRowAvx512(xr, wf, o, d, eps);
        else cpu::RmsNormRow(xr, wf, o, d, eps);
      }
    });
  }

  void MatMul(TensorView out, TensorView x, TensorView w, TensorView bias) override {
    const int64_t K = w.dim(1), N = w.dim(0), T = x.NumElements() / K;
    PETREL_CHECK(out.NumElements() == T * N) << "MatMul out " << out.shape.ToString();
    const MatMulJob job{out, w, bias};
    if (DecodeProducts(x, std::span(&job, 1))) return;
    std::vector<float> bf;
    if (!bias.empty()) {
      bf.resize(N);
      ConvertToF32(bias.data, bias.dtype, bf.data(), N);
    }
    cpu::MatMulArgs a{x.As<float>(), w.data, w.dtype, bias.empty() ? nullptr : bf.data(),
                      out.As<float>(), T, K, N};
    if (IsBlockQuantized(w.dtype)) {
      if (const cpu::PackedQuant* p = packed_.Find(w.data, w.dtype, N, K))
        return cpu::PackedQuantMatMul(a, *p, pool_, isa_);
      return cpu::QuantMatMul(a, pool_, isa_);  // quant_matmul.h
    }
    if (Bf16Capable(w.dtype) && precision_ == MatMulPrecision::kAuto && T == batch_rows_ && !runs_.empty()) {
      // Per sequence (see MatMulPrecision): each run of rows in its own precision.
      for (const RowRun& r : runs_) {
        cpu::MatMulArgs ra = a;
        ra.x = a.x + r.begin * K;
        ra.out = a.out + r.begin * N;
        ra.T = r.end - r.begin;
        if (r.bf16) MatMulBf16(ra);
        else MatMulF32(ra);
      }
      return;
    }
    if (UseBf16Activations(w.dtype, T)) return MatMulBf16(a);
    MatMulF32(a);
  }

  // Each row's first largest logit (core/vocab_scan.h: vectorised; the default's scalar loop
  // took ~0.1 ms for Qwen3's 151,936 logits).
  void ArgMax(TensorView logits, int32_t* ids) override {
    const int64_t V = logits.dim(logits.shape.rank - 1);
    const int64_t R = logits.NumElements() / V;
    for (int64_t r = 0; r < R; ++r)
      ids[r] = (int32_t)vocab_scan::ArgMaxFirst(std::span(logits.As<float>() + r * V, (size_t)V));
  }

  void MatMuls(TensorView x, std::span<const MatMulJob> jobs) override {
    if (!DecodeProducts(x, jobs)) Backend::MatMuls(x, jobs);  // job by job
  }

  // Decode rows (T <= kDecodeMaxRows) of products whose weights take one of the one-pass paths (all
  // packed Q8_0/Q4_0/Q4_1/Q8_A, or all on the f32-activation kernels): one region over all the
  // jobs' rows (each thread its own contiguous share first, ThreadPool::OwnedForEach), so the
  // threads meet once instead of once per product. Returns false, having done nothing, for anything
  // else.
  bool DecodeProducts(TensorView x, std::span<const MatMulJob> jobs) {
    const int64_t K = jobs.empty() ? 0 : jobs[0].w.dim(1);
    const int64_t T = K > 0 ? x.NumElements() / K : 0;
    bool packed = !jobs.empty() && T >= 1 && T <= cpu::kDecodeMaxRows, plain = packed;
    std::vector<const cpu::PackedQuant*> ps;
    for (const MatMulJob& j : jobs) {
      PETREL_CHECK(j.out.NumElements() == T * j.w.dim(0) && j.w.dim(1) == K)
          << "MatMuls out " << j.out.shape.ToString();
      const cpu::PackedQuant* p =
          IsBlockQuantized(j.w.dtype) ? packed_.Find(j.w.data, j.w.dtype, j.w.dim(0), K) : nullptr;
      ps.push_back(p);
      packed = packed && p != nullptr;
      plain = plain && !IsBlockQuantized(j.w.dtype) && !UseBf16Activations(j.w.dtype, T) &&
              !(Bf16Capable(j.w.dtype) && precision_ == MatMulPrecision::kBF16);
    }
    if (!packed && !plain) return false;
    std::vector<std::vector<float>> biases(jobs.size());
    std::vector<cpu::MatMulArgs> args;
    std::vector<int64_t> rows;
    for (size_t i = 0; i < jobs.size(); ++i) {
      const MatMulJob& j = jobs[i];
      const int64_t N = j.w.dim(0);
      if (!j.bias.empty()) {
        biases[i].resize(N);
        ConvertToF32(j.bias.data, j.bias.dtype, biases[i].data(), N);
      }
      args.push_back({x.As<float>(), j.w.data, j.w.dtype, j.bias.empty() ? nullptr : biases[i].data(),
                      j.out.As<float>(), T, K, N});
      rows.push_back(N);
    }
    if (packed) {
      cpu::PackedQuantMatMuls(args, ps, pool_, isa_);
    } else {
      auto fn = matmul_;
      pool_.OwnedForEach(rows, kDecodeChunk, [&](int j, int64_t b, int64_t e) { fn(args[j], b, e); },
                         kDecodeGrain);
    }
    return true;
  }

  // Remembers which rows of this step's batch belong to sequences with at least kBf16MinRows new
  // tokens (prefill chunks: bf16 activations under kAuto) and which do not (f32).
  void BeginBatch(const BatchMetadata& meta) override {
    batch_rows_ = (int64_t)meta.tokens.size();
    runs_.clear();
    std::vector<RowRun> rows;
    for (const AttentionSeq& s : meta.seqs)
      rows.push_back({s.q_begin, (int64_t)s.q_begin + s.q_len, s.q_len >= kBf16MinRows});
    std::sort(rows.begin(), rows.end(), [](const RowRun& x, const RowRun& y) { return x.begin < y.begin; });
    int64_t at = 0;
    auto add = [&](int64_t b, int64_t e, bool bf16) {
      if (e <= b) return;
      if (!runs_.empty() && runs_.back().bf16 == bf16 && runs_.back().end == b) runs_.back().end = e;
      else runs_.push_back({b, e, bf16});
    };
    for (const RowRun& r : rows) {
      if (r.begin < at || r.end > batch_rows_) {  // not a partition of the rows: no per-sequence runs
        runs_.clear();
        return;
      }
      add(at, r.begin, false);  // rows of no sequence
      add(r.begin, r.end, r.bf16);
      at = r.end;
    }
    add(at, batch_rows_, false);
  }

  void MatMulF32(const cpu::MatMulArgs& a) {
    const int64_t N = a.N;
    auto fn = matmul_;
    if (a.T <= cpu::kDecodeMaxRows) {  // decode: memory-bound, each thread one sequential range (see OwnedFor)
      return pool_.OwnedFor(N, kDecodeChunk, [&](int64_t b, int64_t e) { fn(a, b, e); }, kDecodeGrain);
    }
    // About 8 chunks per thread, whole 16-row groups (the kernels' tiles are 4 rows).
    const int64_t chunk = std::max<int64_t>(16, (N / (8 * pool_.size()) + 15) / 16 * 16);
    DynamicFor(N, chunk, [&](int64_t b, int64_t e) { fn(a, b, e); });
  }

  // Small K (a LoRA rank) with f32 weights: each output is a dot product of K contiguous floats,
  // summed in 16 lanes so the compiler vectorises it; rows of w split across threads. Other cases
  // take the generic path (MatMul into scratch + Add).
  void MatMulAdd(TensorView out, TensorView x, TensorView w) override {
    const int64_t K = w.dim(1), N = w.dim(0), T = x.NumElements() / K;
    PETREL_CHECK(out.NumElements() == T * N) << "MatMulAdd out " << out.shape.ToString();
    if (w.dtype != DType::kF32 || K > 256) return Backend::MatMulAdd(out, x, w);
    const float* xs = x.As<float>();
    const float* ws = w.As<float>();
    float* os = out.As<float>();
    pool_.ParallelFor(N, 64, [&](int64_t b, int64_t e, int) {
      for (int64_t t = 0; t < T; ++t) {
        const float* xr = xs + t * K;
        float* orow = os + t * N;
        for (int64_t n = b; n < e; ++n) {
          orow[n] += cpu::LaneDot(xr, ws + n * K, K);
        }
      }
    });
  }

  void Rope(TensorView x, int n_heads, int head_dim, std::span<const int32_t> positions,
            const RopeTable& rope) override {
    const int half = head_dim / 2;
    const int64_t T = (int64_t)positions.size();
    const RopeAngles& ang = Angles(positions, rope, half);
    pool_.ParallelFor(T, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const float* c = ang.cos.data() + t * half;
        const float* s = ang.sin.data() + t * half;
        for (int h = 0; h < n_heads; ++h) {
          float* v = x.As<float>() + (t * n_heads + h) * head_dim;
          for (int i = 0; i < half; ++i) {
            const float a = v[i], bb = v[i + half];
            v[i] = a * c[i] - bb * s[i];
            v[i + half] = bb * c[i] + a * s[i];
          }
        }
      }
    });
  }

  // cos/sin of every position's angles, as HF: angle = float(pos) * inv_freq in f32, then cos/sin
  // in double, times attention_scaling. Kept while the positions and the table stay the same: a
  // step rotates q and k of every layer at the same positions (56 calls per token for Qwen3-0.6B,
  // each 64 double-precision sincos per position before).
  struct RopeAngles {
    std::vector<int32_t> positions;
    std::vector<float> inv_freq;
    float scaling = 0.0f;
    std::vector<float> cos, sin;  // [T][half]
  };
  const RopeAngles& Angles(std::span<const int32_t> positions, const RopeTable& rope, int half) {
    RopeAngles& a = rope_angles_;
    const bool same = a.scaling == rope.attention_scaling && (int)a.inv_freq.size() == half &&
                      std::equal(positions.begin(), positions.end(), a.positions.begin(), a.positions.end()) &&
                      std::equal(rope.inv_freq.begin(), rope.inv_freq.begin() + half, a.inv_freq.begin());
    if (same) return a;
    a.positions.assign(positions.begin(), positions.end());
    a.inv_freq.assign(rope.inv_freq.begin(), rope.inv_freq.begin() + half);
    a.scaling = rope.attention_scaling;
    const int64_t T = (int64_t)positions.size();
    a.cos.resize((size_t)(T * half));
    a.sin.resize((size_t)(T * half));
    pool_.ParallelFor(T, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t)
        for (int i = 0; i < half; ++i) {
          const float angle = (float)positions[t] * rope.inv_freq[i];
          a.cos[t * half + i] = (float)std::cos((double)angle) * rope.attention_scaling;
          a.sin[t * half + i] = (float)std::sin((double)angle) * rope.attention_scaling;
        }
    });
    return a;
  }

  void Add(TensorView x, TensorView y) override {
    float* a = x.As<float>();
    const float* b = y.As<float>();
    pool_.ParallelFor(x.NumElements(), 4096, [&](int64_t s, int64_t e, int) {
      for (int64_t i = s; i < e; ++i) a[i] += b[i];
    });
  }

  void SiluMul(TensorView out, TensorView gate, TensorView up) override {
    const int64_t F = out.dim(out.shape.rank - 1);
    const int64_t T = out.NumElements() / F;
    pool_.ParallelFor(T, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const float* g = gate.As<float>() + t * F;
        const float* u = up.As<float>() + t * F;
        float* o = out.As<float>() + t * F;
        if (isa_ == Isa::kAvx512) cpu::SiluMulAvx512(g, u, o, F);
        else for (int64_t i = 0; i < F; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      }
    });
  }

  void StoreKv(KvCache& cache, int layer, TensorView k, TensorView v,
               std::span<const int64_t> slots) override {
    auto& c = static_cast<CpuKvCache&>(cache);
    const int hd = c.layout().head_dim, hkv = c.layout().n_kv_heads, bs = c.layout().block_size;
    const int64_t row = (int64_t)hkv * hd;
    const DType dt = c.layout().dtype;
    const size_t esz = DTypeSize(dt);
    // Pools are [n_blocks, n_kv_heads, block_size, head_dim] (attention.h); int8 scales stay
    // [n_blocks, block_size, n_kv_heads], one per (token, kv head).
    for (size_t t = 0; t < slots.size(); ++t) {
      for (int h = 0; h < hkv; ++h) {
        const int64_t e = cpu::KvVectorOffset(slots[t], h, hkv, bs, hd);
        const float* ks = k.As<float>() + t * row + h * hd;
        const float* vs = v.As<float>() + t * row + h * hd;
        if (dt == DType::kI8) {
          c.k_scale[layer].As<float>()[slots[t] * hkv + h] = QuantizeKvI8(ks, hd, c.k[layer].As<int8_t>() + e);
          c.v_scale[layer].As<float>()[slots[t] * hkv + h] = QuantizeKvI8(vs, hd, c.v[layer].As<int8_t>() + e);
        } else {
          char* kd = static_cast<char*>(c.k[layer].data()) + e * esz;
          char* vd = static_cast<char*>(c.v[layer].data()) + e * esz;
          if (dt == DType::kBF16 && isa_ == Isa::kAvx512) {
            cpu::F32ToBF16Avx512(ks, reinterpret_cast<uint16_t*>(kd), hd);
            cpu::F32ToBF16Avx512(vs, reinterpret_cast<uint16_t*>(vd), hd);
          } else {
            ConvertFromF32(ks, dt, kd, hd);
            ConvertFromF32(vs, dt, vd, hd);
          }
        }
      }
    }
  }

  void Attention(TensorView out, TensorView q, const KvCache& cache,
                 std::span<const AttentionSeq> seqs, const AttentionParams& p) override {
    const auto& c = static_cast<const CpuKvCache&>(cache);
    const bool i8 = c.layout().dtype == DType::kI8;
    cpu::AttentionArgs a{out.As<float>(),
                         q.As<float>(),
                         c.k[p.layer].data(),
                         c.v[p.layer].data(),
                         c.layout().dtype,
                         i8 ? c.k_scale[p.layer].As<float>() : nullptr,
                         i8 ? c.v_scale[p.layer].As<float>() : nullptr,
                         c.layout().block_size,
                         seqs,
                         p};
    attention_(a, pool_);
  }

  void GatherRows(TensorView out, TensorView x, std::span<const int32_t> rows) override {
    const int64_t d = x.dim(x.shape.rank - 1);
    for (size_t i = 0; i < rows.size(); ++i)
      std::memcpy(out.As<float>() + i * d, x.As<float>() + rows[i] * d, d * sizeof(float));
  }

  void ToHost(TensorView src, float* dst) override {
    std::memcpy(dst, src.data, src.NumElements() * sizeof(float));
  }

 private:
  // MatMulPrecision (backend.h): bf16 activations only over bf16 weights, only with AVX512_BF16.
  bool Bf16Capable(DType w_dtype) const {
    return w_dtype == DType::kBF16 && isa_ == Isa::kAvx512 && precision_ != MatMulPrecision::kF32;
  }
  // A call that is not split per sequence: under kAuto, inside a step (the LM head over gathered
  // rows, one per sequence, LoRA products) f32, so that no row's arithmetic depends on the batch;
  // outside any step (direct calls) bf16 from kBf16MinRows rows.
  bool UseBf16Activations(DType w_dtype, int64_t T) const {
    if (w_dtype != DType::kBF16 || isa_ != Isa::kAvx512) return false;
    switch (precision_) {
      case MatMulPrecision::kF32: return false;
      case MatMulPrecision::kBF16: return true;
      case MatMulPrecision::kAuto: return batch_rows_ < 0 && T >= kBf16MinRows;
    }
    return false;
  }

  // Activations to bf16 pairs once (split over rows), then 64-column panels split over threads.
  void MatMulBf16(const cpu::MatMulArgs& a) {
    const int64_t pairs = cpu::Bf16Pairs(a.K);
    bf16_acts_.resize((size_t)(a.T * pairs));
    uint32_t* xp = bf16_acts_.data();
    pool_.ParallelFor(a.T, 4, [&](int64_t b, int64_t e, int) { cpu::ConvertRowsToBf16Avx512(a.x, a.K, xp, b, e); });
    DynamicFor(a.N, cpu::kBf16PanelCols, [&](int64_t b, int64_t e) { cpu::MatMulBf16ActAvx512(a, xp, b, e); });
  }

  // Runs fn over [0, n) in chunks of `chunk` (the last may be shorter) that the threads take in
  // turn from a shared counter: a thread slowed down (by other load on the machine, a busier
  // memory channel) takes fewer chunks instead of keeping the others waiting at the end, as a
  // fixed split into one range per thread does.
  void DynamicFor(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    if (n_chunks <= 1 || pool_.size() == 1) return fn(0, n);
    std::atomic<int64_t> next{0};
    pool_.RunOnAll([&](int) {
      for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < n_chunks;)
        fn(c * chunk, std::min(n, (c + 1) * chunk));
    });
  }


  ThreadPool pool_;
  RopeAngles rope_angles_;
  Isa isa_;
  MatMulPrecision precision_;
  struct RowRun {
    int64_t begin, end;
    bool bf16;
  };
  int64_t batch_rows_ = -1;    // T of the step announced by BeginBatch
  std::vector<RowRun> runs_;   // its rows in runs of one precision (kAuto)
  std::vector<uint32_t> bf16_acts_;  // MatMulBf16's activations, reused across calls
  cpu::PackedWeights packed_;        // packed Q8_0 / Q4_0 / Q4_1 / Q8_A copies of uploaded weights
  cpu::MatMulFn matmul_ = nullptr;
  cpu::AttentionFn attention_ = nullptr;
};

}  // namespace

std::unique_ptr<Backend> CreateCpuBackend(int n_threads, MatMulPrecision precision) {
  return std::make_unique<CpuBackend>(n_threads, precision);
}

const char* CpuIsaName() { return cpu::IsaName(cpu::SelectedIsa()); }

}  // namespace petrel::kernels
