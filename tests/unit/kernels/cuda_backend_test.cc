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
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/reference/reference.h"

namespace petrel::kernels {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

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
// GQA, with and without a sliding window, K/V in f32 and bf16.
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
  };
  for (const AttnCase& c : cases) RunAttention(this, *backend_, c, &CudaKernels::Upload);
}

}  // namespace
}  // namespace petrel::kernels
