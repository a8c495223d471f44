// Every CUDA kernel against the scalar reference on random inputs with odd sizes (tails, partial
// warps, several split-K partitions, GQA groups larger than one block takes). Label `gpu`: skipped
// when petrel was built without CUDA or the machine has no GPU.
//
// Tolerances (max |Δ| / (1 + |want|)):
//  - f32 arithmetic (norms, RoPE, SiluMul, attention with f32 or bf16-rounded K/V, the GEMV path
//    and the f32 cuBLAS path): 2e-5, as the CPU backend; only the summation order differs.
//  - cuBLAS with 16-bit weights rounds the activations to the weights' type first (see
//    kernels/cuda/matmul.cuh). Against a reference fed the same rounded activations: 1e-4 (f32
//    accumulation order); that pins the indexing. Against the unrounded reference the error is the
//    rounding itself, 2^-9 relative per bf16 operand, ~1e-2 on these sums.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/backend.h"
#include "kernels/reference/reference.h"
#include "test_random.h"

namespace petrel::kernels {
namespace {

using test::Random;

std::vector<float> RoundTo(const std::vector<float>& v, DType dt) {
  if (dt == DType::kF32) return v;
  std::vector<uint16_t> h(v.size());
  ConvertFromF32(v.data(), dt, h.data(), (int64_t)v.size());
  std::vector<float> r(v.size());
  ConvertToF32(h.data(), dt, r.data(), (int64_t)v.size());
  return r;
}

float MaxRelErr(const std::vector<float>& want, const std::vector<float>& got) {
  EXPECT_EQ(want.size(), got.size());
  float m = 0;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    const float e = std::abs(want[i] - got[i]) / (1.0f + std::abs(want[i]));
    if (!(e <= m)) m = std::isnan(e) ? INFINITY : e;
  }
  return m;
}

class CudaKernels : public testing::Test {
 public:
  void SetUp() override {
    auto b = CreateCudaBackend(0);
    if (!b.ok()) GTEST_SKIP() << b.error().ToString();
    backend_ = std::move(b).value();
  }

  // A device copy of `v` stored as `dt` (rank-2 weights keep their dtype on the device).
  TensorView Upload(const std::vector<float>& v, Shape shape, DType dt = DType::kF32) {
    Tensor host(dt, shape);
    ConvertFromF32(v.data(), dt, host.data(), (int64_t)v.size());
    return backend_->UploadWeight(host);
  }
  // A device f32 buffer filled with NaN, so unwritten outputs fail the comparison.
  Tensor Poisoned(Shape shape) {
    std::vector<float> nan(shape.NumElements(), NAN);
    TensorView src = Upload(nan, shape);
    Tensor t = backend_->Allocate(DType::kF32, shape);
    backend_->GatherRows(t, src, Iota(shape[0]));
    return t;
  }
  std::vector<int32_t>& Iota(int64_t n) {
    iota_.resize(n);
    for (int64_t i = 0; i < n; ++i) iota_[i] = (int32_t)i;
    return iota_;
  }
  std::vector<float> Download(TensorView t) {
    std::vector<float> v(t.NumElements());
    backend_->ToHost(t, v.data());
    return v;
  }

 protected:
  std::unique_ptr<Backend> backend_;
  std::vector<int32_t> iota_;
};

TEST_F(CudaKernels, MatMulMatchesReference) {
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t T : {1, 2, 3, 5, 8, 9, 13, 33}) {
      for (auto [K, N] : {std::pair<int64_t, int64_t>{1, 1}, {17, 5}, {64, 64}, {100, 37},
                          {1030, 9}, {2100, 21}, {256, 1000}}) {
        const auto x = Random(T * K, 1 + T);
        const auto w = Random(N * K, 2 + K, 0.1f);
        const auto bias = Random(N, 3);
        TensorView xd = Upload(x, {T, K});
        TensorView wd = Upload(w, {N, K}, dt);
        TensorView bd = Upload(bias, {N});
        // The activations the kernel multiplies: exact on the GEMV path (T <= 8) and with f32
        // weights, rounded to the weight type on the cuBLAS path.
        const auto x_seen = (T <= 8 || dt == DType::kF32) ? x : RoundTo(x, dt);
        const auto w_exact = RoundTo(w, dt);
        std::vector<float> want(T * N);
        reference::MatMul(x_seen.data(), w_exact.data(), DType::kF32, bias.data(), want.data(), T,
                          K, N);
        const float tol = (T <= 8 || dt == DType::kF32) ? 2e-5f : 1e-4f;
        Tensor out = Poisoned({T, N});
        backend_->MatMul(out, xd, wd, bd);
        EXPECT_LT(MaxRelErr(want, Download(out)), tol)
            << DTypeName(dt) << " T=" << T << " K=" << K << " N=" << N;
        reference::MatMul(x_seen.data(), w_exact.data(), DType::kF32, nullptr, want.data(), T, K, N);
        backend_->MatMul(out, xd, wd, TensorView{});
        EXPECT_LT(MaxRelErr(want, Download(out)), tol) << "no bias " << DTypeName(dt) << " T=" << T;
        if (T > 8 && dt == DType::kBF16) {  // the rounding of x itself, against exact x
          reference::MatMul(x.data(), w_exact.data(), DType::kF32, nullptr, want.data(), T, K, N);
          EXPECT_LT(MaxRelErr(want, Download(out)), 2e-2f) << "bf16 activations T=" << T;
        }
      }
    }
  }
}

TEST_F(CudaKernels, ElementwiseOpsMatchReference) {
  const int64_t T = 7, H = 3, hd = 34;
  const auto x = Random(T * H * hd, 11);
  // RmsNorm over rows of d_model and per head (Qwen3 q/k norm), weights uploaded from bf16.
  for (int64_t d : {T * H * hd / T, hd}) {
    const auto w = RoundTo(Random(d, 12), DType::kBF16);
    std::vector<float> want(x.size());
    reference::RmsNorm(x.data(), w.data(), want.data(), (int64_t)x.size() / d, d, 1e-6f);
    TensorView xd = Upload(x, {T, H * hd});
    TensorView wd = Upload(w, {d}, DType::kBF16);
    ASSERT_EQ(wd.dtype, DType::kF32) << "1-D weights are stored as f32";
    Tensor out = Poisoned({T, H * hd});
    backend_->RmsNorm(out, xd, wd, 1e-6f);
    EXPECT_LT(MaxRelErr(want, Download(out)), 2e-5f) << "d=" << d;
    backend_->RmsNorm(xd, xd, wd, 1e-6f);  // in place
    EXPECT_LT(MaxRelErr(want, Download(xd)), 2e-5f) << "in place d=" << d;
  }

  RopeTable rope;
  for (int i = 0; i < hd / 2; ++i) rope.inv_freq.push_back(std::pow(10000.0f, -2.0f * i / hd));
  rope.attention_scaling = 1.1f;
  const std::vector<int32_t> pos = {0, 1, 5, 100, 4095, 7, 40000};
  auto want = x;
  reference::Rope(want.data(), T, H, hd, pos.data(), rope.inv_freq, rope.attention_scaling);
  TensorView xd = Upload(x, {T, H * hd});
  backend_->Rope(xd, H, hd, pos, rope);
  EXPECT_LT(MaxRelErr(want, Download(xd)), 2e-5f);

  const int64_t F = 45;
  const auto g = Random(T * F, 13, 3.0f), u = Random(T * F, 14);
  std::vector<float> sw(T * F);
  reference::SiluMul(g.data(), u.data(), sw.data(), T * F);
  TensorView gd = Upload(g, {T, F}), ud = Upload(u, {T, F});
  Tensor so = Poisoned({T, F});
  backend_->SiluMul(so, gd, ud);
  EXPECT_LT(MaxRelErr(sw, Download(so)), 2e-5f);
  backend_->SiluMul(gd, gd, ud);  // out aliases gate, as the model calls it
  EXPECT_LT(MaxRelErr(sw, Download(gd)), 2e-5f);

  for (int64_t n : {1, 3, 4, 1001}) {  // vector body and scalar tail
    const auto a = Random(n, 15), b = Random(n, 16);
    std::vector<float> sum(n);
    for (int64_t i = 0; i < n; ++i) sum[i] = a[i] + b[i];
    TensorView ad = Upload(a, {n}), bd = Upload(b, {n});
    backend_->Add(ad, bd);
    EXPECT_LT(MaxRelErr(sum, Download(ad)), 1e-7f) << "n=" << n;
  }
}

// The decode fusions of the backend: consecutive GEMVs on one input run as one grouped launch
// (q/k/v, gate/up), Add followed by RmsNorm of the sum runs as one kernel. Odd N, K a multiple of 8
// (the streaming kernel) at d_model-like sizes, T from 1 to 8, f32 and bf16 weights, with and
// without bias; also long-row RmsNorm alone (block per row, vector and scalar) and ArgMax.
TEST_F(CudaKernels, DecodeFusionsMatchReference) {
  for (DType dt : {DType::kBF16, DType::kF32}) {
    for (int64_t T : {1, 3, 8}) {
      for (int64_t K : {1024, 776, 3072}) {
        const std::vector<int64_t> Ns = {1003, 129, 37};
        const auto x = Random(T * K, 50 + T);
        TensorView xd = Upload(x, {T, K});
        std::vector<Tensor> outs;
        std::vector<std::vector<float>> wants;
        for (size_t i = 0; i < Ns.size(); ++i) {
          const int64_t N = Ns[i];
          const auto w = RoundTo(Random(N * K, 60 + i, 0.05f), dt);
          const auto bias = Random(N, 70 + i);
          TensorView wd = Upload(w, {N, K}, dt);
          TensorView bd = i == 1 ? TensorView{} : Upload(bias, {N});
          std::vector<float> want(T * N);
          reference::MatMul(x.data(), w.data(), DType::kF32, i == 1 ? nullptr : bias.data(),
                            want.data(), T, K, N);
          wants.push_back(want);
          outs.push_back(Poisoned({T, N}));
          backend_->MatMul(outs.back(), xd, wd, bd);  // grouped with the previous ones
        }
        for (size_t i = 0; i < Ns.size(); ++i)
          EXPECT_LT(MaxRelErr(wants[i], Download(outs[i])), 2e-5f)
              << DTypeName(dt) << " T=" << T << " K=" << K << " N=" << Ns[i];
      }
    }
  }
  for (int64_t d : {1024, 1036, 1030, 2048}) {
    const int64_t rows = 3;
    const auto x = Random(rows * d, 80), y = Random(rows * d, 81);
    const auto w = RoundTo(Random(d, 82), DType::kBF16);
    std::vector<float> sum(rows * d), want(rows * d);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = x[i] + y[i];
    reference::RmsNorm(sum.data(), w.data(), want.data(), rows, d, 1e-6f);
    TensorView xd = Upload(x, {rows, d}), yd = Upload(y, {rows, d});
    TensorView wd = Upload(w, {d}, DType::kBF16);
    Tensor out = Poisoned({rows, d});
    backend_->Add(xd, yd);
    backend_->RmsNorm(out, xd, wd, 1e-6f);  // fused with the Add
    EXPECT_LT(MaxRelErr(want, Download(out)), 2e-5f) << "add+norm d=" << d;
    EXPECT_LT(MaxRelErr(sum, Download(xd)), 1e-7f) << "add+norm residual d=" << d;
    backend_->RmsNorm(xd, xd, wd, 1e-6f);  // long row alone, in place
    EXPECT_LT(MaxRelErr(want, Download(xd)), 2e-5f) << "norm d=" << d;
  }
  for (int64_t V : {1003, 151936}) {
    const int64_t R = 5;
    auto l = Random(R * V, 90);
    l[1 * V + 7] = l[1 * V + V - 1] = 100.0f;  // a tie: the first one wins
    l[2 * V + V - 1] = 100.0f;                 // the last element
    for (int64_t j = 0; j < V; ++j) l[3 * V + j] = -1.0f;  // all equal: index 0
    TensorView ld = Upload(l, {R, V});
    std::vector<int32_t> got(R, -1), want(R);
    for (int64_t r = 0; r < R; ++r)
      want[r] = (int32_t)(std::max_element(l.begin() + r * V, l.begin() + (r + 1) * V) -
                          (l.begin() + r * V));
    backend_->ArgMax(ld, got.data());
    EXPECT_EQ(want, got) << "V=" << V;
  }
}

TEST_F(CudaKernels, EmbeddingAndGatherRows) {
  const int64_t vocab = 53, d = 37;
  const auto table = Random(vocab * d, 17);
  const std::vector<int32_t> ids = {3, 0, 52, 3, 17};
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    const auto exact = RoundTo(table, dt);
    std::vector<float> want;
    for (int32_t id : ids) want.insert(want.end(), exact.begin() + id * d, exact.begin() + (id + 1) * d);
    TensorView td = Upload(table, {vocab, d}, dt);
    Tensor out = Poisoned({(int64_t)ids.size(), d});
    backend_->Embedding(out, td, ids);
    EXPECT_EQ(MaxRelErr(want, Download(out)), 0.0f) << DTypeName(dt);
  }
  const std::vector<int32_t> rows = {4, 1, 1};
  const auto x = Random(5 * d, 18);
  std::vector<float> want;
  for (int32_t r : rows) want.insert(want.end(), x.begin() + r * d, x.begin() + (r + 1) * d);
  Tensor out = Poisoned({3, d});
  backend_->GatherRows(out, Upload(x, {5, d}), rows);
  EXPECT_EQ(MaxRelErr(want, Download(out)), 0.0f);
}

struct AttnCase {
  int n_heads, n_kv_heads, head_dim, block_size;
  std::vector<int> ctx, q_len;
};

// Paged attention over shuffled block tables: several sequences (prefill chunks and decode rows),
// GQA, with and without a sliding window, K/V in f32 and bf16. Batches with prefill rows take the
// tiled prefill kernel (head_dim a multiple of 8 for bf16, 4 for f32, at most 128), else the
// general one; decode-only batches take the decode kernel.
void RunAttention(CudaKernels* t, Backend& be, const AttnCase& c, TensorView (CudaKernels::*upload)(
                      const std::vector<float>&, Shape, DType)) {
  const int Hq = c.n_heads, Hkv = c.n_kv_heads, hd = c.head_dim, bs = c.block_size;
  const int S = (int)c.ctx.size();
  int total_blocks = 0;
  for (int n : c.ctx) total_blocks += (n + bs - 1) / bs;
  // A shuffled assignment of physical blocks.
  std::vector<int32_t> phys(total_blocks + 3);
  for (size_t i = 0; i < phys.size(); ++i) phys[i] = (int32_t)i;
  std::shuffle(phys.begin(), phys.end(), std::mt19937(7));
  for (DType kv_dtype : {DType::kF32, DType::kBF16}) {
    for (int window : {0, 37}) {
      KvCacheLayout layout{.n_layers = 2, .n_kv_heads = Hkv, .head_dim = hd, .block_size = bs,
                           .n_blocks = (int64_t)phys.size(), .dtype = kv_dtype};
      auto cache = be.AllocateKvCache(layout);
      std::vector<std::vector<int32_t>> tables(S);
      std::vector<float> q_all, want_all;
      std::vector<AttentionSeq> seqs;
      int next = 0, row = 0;
      for (int s = 0; s < S; ++s) {
        const int ctx = c.ctx[s], ql = c.q_len[s];
        for (int b = 0; b < (ctx + bs - 1) / bs; ++b) tables[s].push_back(phys[next++]);
        auto k = Random((size_t)ctx * Hkv * hd, 20 + s), v = Random((size_t)ctx * Hkv * hd, 30 + s);
        std::vector<int64_t> slots;
        for (int i = 0; i < ctx; ++i) slots.push_back((int64_t)tables[s][i / bs] * bs + i % bs);
        TensorView kd = (t->*upload)(k, {ctx, Hkv * hd}, DType::kF32);
        TensorView vd = (t->*upload)(v, {ctx, Hkv * hd}, DType::kF32);
        be.StoreKv(*cache, 1, kd, vd, slots);
        k = RoundTo(k, kv_dtype);
        v = RoundTo(v, kv_dtype);
        auto q = Random((size_t)ql * Hq * hd, 40 + s);
        std::vector<float> o(q.size());
        reference::Attention(q.data(), k.data(), v.data(), o.data(), ql, ctx, Hq, Hkv, hd, 0.3f,
                             window);
        q_all.insert(q_all.end(), q.begin(), q.end());
        want_all.insert(want_all.end(), o.begin(), o.end());
        seqs.push_back(AttentionSeq{row, ql, ctx, tables[s]});
        row += ql;
      }
      TensorView qd = (t->*upload)(q_all, {row, Hq * hd}, DType::kF32);
      Tensor out = be.Allocate(DType::kF32, {row, Hq * hd});
      be.Attention(out, qd, *cache, seqs,
                   AttentionParams{.layer = 1, .n_heads = Hq, .n_kv_heads = Hkv, .head_dim = hd,
                                   .scale = 0.3f, .sliding_window = window});
      std::vector<float> got(want_all.size());
      be.ToHost(out, got.data());
      EXPECT_LT(MaxRelErr(want_all, got), 2e-5f)
          << DTypeName(kv_dtype) << " window " << window << " Hq " << Hq << " Hkv " << Hkv
          << " hd " << hd;
    }
  }
}

// Decode-only batches (every sequence one query row) take the split-K decode kernel: contexts
// across several 64-token splits (merged by the last block), exactly one split, one token; GQA
// groups 1, 2, 4 and 9 (two head chunks); head_dim 20 (f32 KV only: bf16 falls back), 64, 128,
// 256; block sizes 1 and 16.
TEST_F(CudaKernels, DecodeAttentionMatchesReference) {
  const std::vector<AttnCase> cases = {
      {16, 8, 128, 16, {1, 17, 64, 65, 300, 700}, {1, 1, 1, 1, 1, 1}},
      {18, 2, 128, 16, {520, 33}, {1, 1}},
      {8, 2, 64, 16, {129, 3}, {1, 1}},
      {6, 2, 20, 4, {11, 97}, {1, 1}},
      {4, 4, 256, 16, {200, 3}, {1, 1}},
      {3, 3, 32, 1, {40, 7}, {1, 1}},
      // 532 splits of one head: more (m, l) pairs than the fast merge stages in shared memory
      // with f32 KV (the per-output loop), fewer with bf16.
      {3, 3, 32, 16, {17000, 5}, {1, 1}},
      // One or two rows over many 32-token splits (the batch-1 shape of Qwen3-0.6B).
      {16, 8, 128, 16, {385}, {1}},
      {16, 8, 128, 16, {384, 1000}, {1, 1}},
  };
  for (const AttnCase& c : cases) RunAttention(this, *backend_, c, &CudaKernels::Upload);
}

// The per-head ops between the projections and attention as the model calls them (q/k RMSNorm
// per head, RoPE of q and k, StoreKv of k and v): one fused launch. q and k must match the
// reference ops; the cache must hold the normed and rotated k and the plain v, which attention
// over the stored tokens checks (its reference is fed the reference k).
TEST_F(CudaKernels, FusedHeadOpsMatchReference) {
  for (DType kv_dtype : {DType::kBF16, DType::kF32}) {
    for (auto [T, Hq, Hkv, hd] : {std::tuple<int, int, int, int>{5, 16, 8, 128}, {1, 6, 2, 20},
                                  {7, 4, 4, 64}}) {
      const int bs = 16;
      const auto q = Random((size_t)T * Hq * hd, 100 + T), k = Random((size_t)T * Hkv * hd, 101);
      const auto v = Random((size_t)T * Hkv * hd, 102);
      const auto wq = RoundTo(Random(hd, 103), DType::kBF16), wk = RoundTo(Random(hd, 104), DType::kBF16);
      RopeTable rope;
      for (int i = 0; i < hd / 2; ++i) rope.inv_freq.push_back(std::pow(1e6f, -2.0f * i / hd));
      std::vector<int32_t> pos(T);
      for (int i = 0; i < T; ++i) pos[i] = i;
      std::vector<float> q_want(q.size()), k_want(k.size());
      reference::RmsNorm(q.data(), wq.data(), q_want.data(), (int64_t)T * Hq, hd, 1e-6f);
      reference::RmsNorm(k.data(), wk.data(), k_want.data(), (int64_t)T * Hkv, hd, 1e-6f);
      reference::Rope(q_want.data(), T, Hq, hd, pos.data(), rope.inv_freq, 1.0f);
      reference::Rope(k_want.data(), T, Hkv, hd, pos.data(), rope.inv_freq, 1.0f);

      KvCacheLayout layout{.n_layers = 1, .n_kv_heads = Hkv, .head_dim = hd, .block_size = bs,
                           .n_blocks = 3, .dtype = kv_dtype};
      auto cache = backend_->AllocateKvCache(layout);
      const std::vector<int32_t> table = {2, 0};
      std::vector<int64_t> slots(T);
      for (int i = 0; i < T; ++i) slots[i] = (int64_t)table[i / bs] * bs + i % bs;
      TensorView qd = Upload(q, {T, Hq * hd}), kd = Upload(k, {T, Hkv * hd});
      TensorView vd = Upload(v, {T, Hkv * hd});
      TensorView wqd = Upload(wq, {hd}, DType::kBF16), wkd = Upload(wk, {hd}, DType::kBF16);
      // Announced as the model does, so the ops find the step's device copies (no ad hoc upload
      // between them).
      backend_->BeginBatch({.positions = pos, .slots = slots});
      backend_->RmsNorm(qd, qd, wqd, 1e-6f);
      backend_->RmsNorm(kd, kd, wkd, 1e-6f);
      backend_->Rope(qd, Hq, hd, pos, rope);
      backend_->Rope(kd, Hkv, hd, pos, rope);
      backend_->StoreKv(*cache, 0, kd, vd, slots);
      EXPECT_LT(MaxRelErr(q_want, Download(qd)), 2e-5f) << "q T=" << T << " hd=" << hd;
      EXPECT_LT(MaxRelErr(k_want, Download(kd)), 2e-5f) << "k T=" << T << " hd=" << hd;

      // Attention of the (exact) reference q over the cache: the stored k and v.
      const auto k_c = RoundTo(k_want, kv_dtype), v_c = RoundTo(v, kv_dtype);
      std::vector<float> want(q.size());
      reference::Attention(q_want.data(), k_c.data(), v_c.data(), want.data(), T, T, Hq, Hkv, hd,
                           0.125f, 0);
      const std::vector<AttentionSeq> seqs = {AttentionSeq{0, T, T, table}};
      Tensor out = Poisoned({T, Hq * hd});
      backend_->Attention(out, Upload(q_want, {T, Hq * hd}), *cache, seqs,
                          AttentionParams{.layer = 0, .n_heads = Hq, .n_kv_heads = Hkv,
                                          .head_dim = hd, .scale = 0.125f});
      EXPECT_LT(MaxRelErr(want, Download(out)), 2e-5f)
          << DTypeName(kv_dtype) << " cache T=" << T << " hd=" << hd;
    }
  }
}

// A decode step's per-head ops as the model calls them (q/k RMSNorm per head, RoPE of q and k,
// StoreKv, then Attention): the decode attention kernel does them itself (DecodeHeadOps). Several
// sequences with contexts inside one split, across splits and one token; GQA 2 and 1; head_dim
// 64, 128, 256; with and without the norms; f32 and bf16 KV. The output must match attention of
// the reference q over the reference cache, q and k must be left normed and rotated in place, and
// the cache must hold the new k and v (a second attention, of the exact q, reads them back).
TEST_F(CudaKernels, HeadOpsFusedIntoDecodeAttention) {
  struct Case {
    int Hq, Hkv, hd, bs;
    std::vector<int> ctx;
    bool norm;
  };
  const std::vector<Case> cases = {{16, 8, 128, 16, {1, 40, 300}, true},
                                   {16, 8, 128, 16, {383, 770}, true},  // 12 and 25 splits
                                   {6, 2, 64, 16, {33, 7}, false},
                                   {4, 4, 256, 1, {70}, true}};
  for (DType kv_dtype : {DType::kBF16, DType::kF32}) {
    for (const Case& c : cases) {
      const int Hq = c.Hq, Hkv = c.Hkv, hd = c.hd, bs = c.bs, S = (int)c.ctx.size();
      const int kvr = Hkv * hd;
      int n_blocks = 0;
      for (int n : c.ctx) n_blocks += (n + bs - 1) / bs;
      KvCacheLayout layout{.n_layers = 1, .n_kv_heads = Hkv, .head_dim = hd, .block_size = bs,
                           .n_blocks = n_blocks + 2, .dtype = kv_dtype};
      auto cache = backend_->AllocateKvCache(layout);
      RopeTable rope;
      for (int i = 0; i < hd / 2; ++i) rope.inv_freq.push_back(std::pow(1e6f, -2.0f * i / hd));
      const auto wq = RoundTo(Random(hd, 203), DType::kBF16), wk = RoundTo(Random(hd, 204), DType::kBF16);
      TensorView wqd = Upload(wq, {hd}, DType::kBF16), wkd = Upload(wk, {hd}, DType::kBF16);

      // The earlier tokens of every sequence, stored by an announced step (as a prefill stores).
      std::vector<std::vector<int32_t>> tables(S);
      std::vector<std::vector<float>> k_ctx(S), v_ctx(S);
      std::vector<int64_t> old_slots, new_slots;
      std::vector<float> k_old, v_old;
      std::vector<int32_t> old_pos, new_pos;
      int next = 1;  // physical block 0 stays unused
      for (int s = 0; s < S; ++s) {
        for (int b = 0; b < (c.ctx[s] + bs - 1) / bs; ++b) tables[s].push_back(next++);
        k_ctx[s] = Random((size_t)c.ctx[s] * kvr, 210 + s);
        v_ctx[s] = Random((size_t)c.ctx[s] * kvr, 220 + s);
        for (int i = 0; i < c.ctx[s]; ++i) {
          const int64_t slot = (int64_t)tables[s][i / bs] * bs + i % bs;
          if (i + 1 < c.ctx[s]) {
            old_slots.push_back(slot);
            old_pos.push_back(i);
            k_old.insert(k_old.end(), k_ctx[s].begin() + (int64_t)i * kvr, k_ctx[s].begin() + (int64_t)(i + 1) * kvr);
            v_old.insert(v_old.end(), v_ctx[s].begin() + (int64_t)i * kvr, v_ctx[s].begin() + (int64_t)(i + 1) * kvr);
          } else {
            new_slots.push_back(slot);
            new_pos.push_back(i);
          }
        }
      }
      if (!old_slots.empty()) {
        const int n_old = (int)old_slots.size();
        backend_->BeginBatch({.positions = old_pos, .slots = old_slots});
        backend_->StoreKv(*cache, 0, Upload(k_old, {n_old, kvr}), Upload(v_old, {n_old, kvr}), old_slots);
      }

      // The decode step: raw q, k, v of each sequence's newest token.
      const auto q = Random((size_t)S * Hq * hd, 230), k = Random((size_t)S * kvr, 231);
      const auto v = Random((size_t)S * kvr, 232);
      std::vector<float> q_want(q.size()), k_want(k.size());
      if (c.norm) {
        reference::RmsNorm(q.data(), wq.data(), q_want.data(), (int64_t)S * Hq, hd, 1e-6f);
        reference::RmsNorm(k.data(), wk.data(), k_want.data(), (int64_t)S * Hkv, hd, 1e-6f);
      } else {
        q_want = q, k_want = k;
      }
      reference::Rope(q_want.data(), S, Hq, hd, new_pos.data(), rope.inv_freq, 1.0f);
      reference::Rope(k_want.data(), S, Hkv, hd, new_pos.data(), rope.inv_freq, 1.0f);
      std::vector<float> want;
      std::vector<AttentionSeq> seqs;
      std::vector<int32_t> tokens(S, 0);
      for (int s = 0; s < S; ++s) {
        std::copy(k_want.begin() + (int64_t)s * kvr, k_want.begin() + (int64_t)(s + 1) * kvr,
                  k_ctx[s].end() - kvr);
        std::copy(v.begin() + (int64_t)s * kvr, v.begin() + (int64_t)(s + 1) * kvr, v_ctx[s].end() - kvr);
        const auto kc = RoundTo(k_ctx[s], kv_dtype), vc = RoundTo(v_ctx[s], kv_dtype);
        std::vector<float> o((size_t)Hq * hd);
        reference::Attention(q_want.data() + (int64_t)s * Hq * hd, kc.data(), vc.data(), o.data(), 1,
                             c.ctx[s], Hq, Hkv, hd, 0.2f, 0);
        want.insert(want.end(), o.begin(), o.end());
        seqs.push_back(AttentionSeq{s, 1, c.ctx[s], tables[s]});
      }
      const AttentionParams params{.layer = 0, .n_heads = Hq, .n_kv_heads = Hkv, .head_dim = hd,
                                   .scale = 0.2f};
      TensorView qd = Upload(q, {S, Hq * hd}), kd = Upload(k, {S, kvr}), vd = Upload(v, {S, kvr});
      Tensor out = Poisoned({S, Hq * hd});
      backend_->BeginBatch({.tokens = tokens, .positions = new_pos, .slots = new_slots, .seqs = seqs});
      if (c.norm) {
        backend_->RmsNorm(qd, qd, wqd, 1e-6f);
        backend_->RmsNorm(kd, kd, wkd, 1e-6f);
      }
      backend_->Rope(qd, Hq, hd, new_pos, rope);
      backend_->Rope(kd, Hkv, hd, new_pos, rope);
      backend_->StoreKv(*cache, 0, kd, vd, new_slots);
      backend_->Attention(out, qd, *cache, seqs, params);
      const std::string what = std::string(DTypeName(kv_dtype)) + " Hq " + std::to_string(Hq) +
                               " hd " + std::to_string(hd) + (c.norm ? " norm" : "");
      EXPECT_LT(MaxRelErr(want, Download(out)), 2e-5f) << what;
      EXPECT_LT(MaxRelErr(q_want, Download(qd)), 2e-5f) << "q " << what;
      EXPECT_LT(MaxRelErr(k_want, Download(kd)), 2e-5f) << "k " << what;

      // The cache now holds the new k and v: attention of the exact q reads them back.
      Tensor out2 = Poisoned({S, Hq * hd});
      backend_->BeginBatch({.tokens = tokens, .positions = new_pos, .slots = new_slots, .seqs = seqs});
      backend_->Attention(out2, Upload(q_want, {S, Hq * hd}), *cache, seqs, params);
      EXPECT_LT(MaxRelErr(want, Download(out2)), 2e-5f) << "cache " << what;
    }
  }
}

// The gate/up GEMVs followed by SiluMul run as one launch (silu(gate) * up written besides gate
// and up), and the LM-head GEMV followed by ArgMax reduces the argmax in its blocks. Odd sizes,
// T 1 to 8, bf16 and f32 weights; ties go to the first index; a second launch checks that the
// argmax state was reset.
TEST_F(CudaKernels, GemvEpilogueFusionsMatchReference) {
  for (DType dt : {DType::kBF16, DType::kF32}) {
    for (int64_t T : {1, 3, 8}) {
      for (int64_t K : {1024, 776}) {
        const int64_t F = 1003;
        const auto x = Random(T * K, 110 + T);
        const auto wg = RoundTo(Random(F * K, 111, 0.05f), dt);
        const auto wu = RoundTo(Random(F * K, 112, 0.05f), dt);
        std::vector<float> g(T * F), u(T * F), want(T * F);
        reference::MatMul(x.data(), wg.data(), DType::kF32, nullptr, g.data(), T, K, F);
        reference::MatMul(x.data(), wu.data(), DType::kF32, nullptr, u.data(), T, K, F);
        reference::SiluMul(g.data(), u.data(), want.data(), T * F);
        TensorView xd = Upload(x, {T, K});
        TensorView wgd = Upload(wg, {F, K}, dt), wud = Upload(wu, {F, K}, dt);
        for (bool separate_out : {false, true}) {
          Tensor gd = Poisoned({T, F}), ud = Poisoned({T, F}), od = Poisoned({T, F});
          backend_->MatMul(gd, xd, wgd, TensorView{});
          backend_->MatMul(ud, xd, wud, TensorView{});
          backend_->SiluMul(separate_out ? TensorView(od) : TensorView(gd), gd, ud);
          EXPECT_LT(MaxRelErr(want, Download(separate_out ? TensorView(od) : TensorView(gd))), 2e-5f)
              << "silu " << DTypeName(dt) << " T=" << T << " K=" << K;
          EXPECT_LT(MaxRelErr(u, Download(ud)), 2e-5f) << "up " << DTypeName(dt) << " T=" << T;
          if (separate_out) {
            EXPECT_LT(MaxRelErr(g, Download(gd)), 2e-5f) << "gate T=" << T;
          }
        }
      }
    }
  }
  const int64_t V = 50021, K = 1024;
  const auto x0 = Random(K, 120);  // the first row of every x below (same seed)
  auto w_all = Random(V * K, 121, 0.05f);
  // Rows 100 and V - 7 identical and large: a tie for the first row of x, the first index wins.
  for (int64_t k = 0; k < K; ++k) {
    w_all[100 * K + k] = x0[k] > 0 ? 0.5f : -0.5f;
    w_all[(V - 7) * K + k] = w_all[100 * K + k];
  }
  for (DType dt : {DType::kBF16, DType::kF32}) {
    const auto w = RoundTo(w_all, dt);
    TensorView wd = Upload(w, {V, K}, dt);
    for (int64_t T : {1, 2, 5, 8}) {
      const auto x = Random(T * K, 120);
      TensorView xd = Upload(x, {T, K});
      std::vector<float> want_l(T * V);
      reference::MatMul(x.data(), w.data(), DType::kF32, nullptr, want_l.data(), T, K, V);
      for (int rep = 0; rep < 2; ++rep) {
        Tensor lg = Poisoned({T, V});
        std::vector<int32_t> got(T, -1);
        backend_->MatMul(lg, xd, wd, TensorView{});
        backend_->ArgMax(lg, got.data());
        const auto l = Download(lg);  // the fused GEMV still writes the logits
        EXPECT_LT(MaxRelErr(want_l, l), 2e-5f) << "logits T=" << T;
        for (int64_t t = 0; t < T; ++t) {
          const int32_t want = (int32_t)(std::max_element(l.begin() + t * V, l.begin() + (t + 1) * V) -
                                         (l.begin() + t * V));
          EXPECT_EQ(want, got[t]) << DTypeName(dt) << " T=" << T << " row " << t << " rep " << rep;
        }
        EXPECT_EQ(got[0], 100) << DTypeName(dt) << " T=" << T;
      }
    }
  }
}

// A decode layer's skeleton around the GEMVs: o_proj, the residual Add (folded into o_proj's
// epilogue), the MLP input RMSNorm (computed by the next GEMVs themselves) and two GEMVs on its
// output. Every tensor the ops write must match the reference: out, the updated residual x, the
// norm's output h, and both projections.
TEST_F(CudaKernels, GemvNormPrologueAndResidualMatchReference) {
  for (DType dt : {DType::kBF16, DType::kF32}) {
    for (int64_t T : {1, 3, 8}) {
      for (auto [Ka, d] : {std::pair<int64_t, int64_t>{2048, 1024}, {1032, 776}}) {
        const int64_t Nq = 1003, Nk = 129;
        const auto a = Random(T * Ka, 130 + T), x = Random(T * d, 131);
        const auto wo = RoundTo(Random(d * Ka, 132, 0.03f), dt);
        const auto wq = RoundTo(Random(Nq * d, 133, 0.05f), dt);
        const auto wk = RoundTo(Random(Nk * d, 134, 0.05f), dt);
        const auto wn = RoundTo(Random(d, 135), DType::kBF16);
        std::vector<float> out(T * d), x1(T * d), h(T * d), q(T * Nq), k(T * Nk);
        reference::MatMul(a.data(), wo.data(), DType::kF32, nullptr, out.data(), T, Ka, d);
        for (int64_t i = 0; i < T * d; ++i) x1[i] = x[i] + out[i];
        reference::RmsNorm(x1.data(), wn.data(), h.data(), T, d, 1e-6f);
        reference::MatMul(h.data(), wq.data(), DType::kF32, nullptr, q.data(), T, d, Nq);
        reference::MatMul(h.data(), wk.data(), DType::kF32, nullptr, k.data(), T, d, Nk);
        TensorView ad = Upload(a, {T, Ka}), xd = Upload(x, {T, d});
        TensorView wod = Upload(wo, {d, Ka}, dt), wqd = Upload(wq, {Nq, d}, dt);
        TensorView wkd = Upload(wk, {Nk, d}, dt), wnd = Upload(wn, {d}, DType::kBF16);
        Tensor od = Poisoned({T, d}), hd = Poisoned({T, d});
        Tensor qd = Poisoned({T, Nq}), kd = Poisoned({T, Nk});
        backend_->MatMul(od, ad, wod, TensorView{});
        backend_->Add(xd, od);
        backend_->RmsNorm(hd, xd, wnd, 1e-6f);
        backend_->MatMul(qd, hd, wqd, TensorView{});
        backend_->MatMul(kd, hd, wkd, TensorView{});
        const std::string at = std::string(DTypeName(dt)) + " T=" + std::to_string(T) +
                               " d=" + std::to_string(d);
        EXPECT_LT(MaxRelErr(q, Download(qd)), 2e-5f) << "q " << at;
        EXPECT_LT(MaxRelErr(k, Download(kd)), 2e-5f) << "k " << at;
        EXPECT_LT(MaxRelErr(h, Download(hd)), 2e-5f) << "h " << at;
        EXPECT_LT(MaxRelErr(x1, Download(xd)), 2e-5f) << "x " << at;
        EXPECT_LT(MaxRelErr(out, Download(od)), 2e-5f) << "out " << at;
      }
    }
  }
}

TEST_F(CudaKernels, PagedAttentionMatchesReference) {
  const std::vector<AttnCase> cases = {
      // Small odd head_dim (scalar path), a prefill chunk and a decode row.
      {6, 2, 20, 4, {11, 9}, {3, 1}},
      // head_dim 64 (16-byte loads), group 4, contexts past one 256-token partition (split-K).
      {8, 2, 64, 16, {700, 300, 1}, {5, 1, 1}},
      // Group 9 > 8 query heads per block: two head chunks per KV head; head_dim 128.
      {18, 2, 128, 16, {520, 33}, {1, 33}},
      // MHA (group 1), block size 1.
      {3, 3, 32, 1, {40}, {40}},
      // Whole prompts over several 64-token tiles (Qwen3-0.6B heads), a chunked prefill (q_len <
      // ctx), a decode row in the same batch.
      {16, 8, 128, 16, {200, 77, 130, 9}, {200, 77, 67, 1}},
      // Group 3 (tiles of 21 rows), head_dim 96.
      {6, 2, 96, 16, {150}, {150}},
  };
  // The default backend picks the per-row kernel for these small batches; a second one always
  // takes the tiled prefill kernel.
  setenv("PETREL_CUDA_PREFILL_MIN_BLOCKS", "0", 1);
  auto tiled = CreateCudaBackend(0);
  unsetenv("PETREL_CUDA_PREFILL_MIN_BLOCKS");
  ASSERT_TRUE(tiled.ok());
  for (const AttnCase& c : cases) {
    RunAttention(this, *backend_, c, &CudaKernels::Upload);
    RunAttention(this, **tiled, c, &CudaKernels::Upload);
  }
}

}  // namespace
}  // namespace petrel::kernels
