// Every CPU kernel, for every ISA variant this machine can run and every weight dtype, against the
// scalar reference on random inputs with odd sizes (remainders and tails).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/kv_quant.h"
#include "kernels/backend.h"
#include "matmuls_check.h"
#include "kernels/cpu/isa.h"
#include "kernels/reference/reference.h"
#include "test_random.h"

namespace petrel::kernels {
namespace {

using cpu::Isa;

struct Case {
  Isa isa;
  DType w_dtype;
};

std::string Name(const testing::TestParamInfo<Case>& i) {
  return std::string(cpu::IsaName(i.param.isa)) + "_" + DTypeName(i.param.w_dtype);
}

using test::Random;

// Weights stored in `dt`; `exact` receives the values the kernel will actually see.
Tensor MakeWeights(const std::vector<float>& src, DType dt, Shape shape, std::vector<float>* exact) {
  Tensor t(dt, shape);
  ConvertFromF32(src.data(), dt, t.data(), (int64_t)src.size());
  exact->resize(src.size());
  ConvertToF32(t.data(), dt, exact->data(), (int64_t)src.size());
  return t;
}

float MaxRelErr(const std::vector<float>& a, const float* b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / (1.0f + std::abs(a[i])));
  return m;
}

class CpuKernels : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (GetParam().isa > cpu::DetectIsa()) GTEST_SKIP() << "ISA not available on this CPU";
    backend_ = Create(MatMulPrecision::kF32);  // the exact path; kBF16 has its own test
  }
  std::unique_ptr<Backend> Create(MatMulPrecision precision) {
    setenv("PETREL_ISA", cpu::IsaName(GetParam().isa), 1);
    auto be = CreateCpuBackend(3, precision);
    unsetenv("PETREL_ISA");
    return be;
  }
  std::unique_ptr<Backend> backend_;
};

TEST_P(CpuKernels, MatMulMatchesReference) {
  const DType dt = GetParam().w_dtype;
  for (int64_t T : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 33, 300}) {
    // T 1..8 the decode kernels, 9..256 token groups over row tiles, 300 the prefill panels.
    // {130, 1001}: decode rows split in many chunks over the 3 threads (CpuBackend::OwnedFor)
    // and a K that is not a multiple of the one-token kernel's 64-wide step.
    for (auto [K, N] : {std::pair<int64_t, int64_t>{1, 1}, {17, 5}, {64, 64}, {100, 37}, {1030, 9}, {2100, 21},
                        {130, 1001}}) {
      auto x = Random(T * K, 1 + T);
      std::vector<float> w_exact;
      Tensor w = MakeWeights(Random(N * K, 2 + K, 0.1f), dt, {N, K}, &w_exact);
      auto bias = Random(N, 3);
      Tensor bias_t(DType::kF32, {N});
      std::copy(bias.begin(), bias.end(), bias_t.As<float>());
      std::vector<float> want(T * N);
      reference::MatMul(x.data(), w_exact.data(), DType::kF32, bias.data(), want.data(), T, K, N);
      Tensor xt(DType::kF32, {T, K});
      std::copy(x.begin(), x.end(), xt.As<float>());
      Tensor out(DType::kF32, {T, N});
      backend_->MatMul(out, xt, w, bias_t);
      EXPECT_LT(MaxRelErr(want, out.As<float>()), 2e-5f) << "T=" << T << " K=" << K << " N=" << N;
      // Without bias too.
      reference::MatMul(x.data(), w_exact.data(), DType::kF32, nullptr, want.data(), T, K, N);
      backend_->MatMul(out, xt, w, TensorView{});
      EXPECT_LT(MaxRelErr(want, out.As<float>()), 2e-5f) << "no bias T=" << T << " K=" << K;
    }
  }
}

// MatMulPrecision::kBF16: activations rounded to bf16, vdpbf16ps over pair-packed weight panels
// (AVX-512 with bf16 weights), against the scalar reference that rounds x the same way. Sizes cover
// partial register tiles (T % 6), partial panels (N % 64, N % 16), odd K and several K blocks.
// Elsewhere (other ISAs, other dtypes) kBF16 falls back to the exact f32 path. kAuto takes the f32
// path below kBf16MinRows rows.
TEST_P(CpuKernels, Bf16ActivationMatMulMatchesReference) {
  const DType dt = GetParam().w_dtype;
  const bool bf16_path = GetParam().isa == Isa::kAvx512 && dt == DType::kBF16;
  auto be = Create(MatMulPrecision::kBF16);
  auto be_auto = Create(MatMulPrecision::kAuto);
  for (int64_t T : {1, 5, 6, 7, 13, 32, 71}) {
    for (auto [K, N] : {std::pair<int64_t, int64_t>{1, 1}, {2, 17}, {31, 64}, {33, 65}, {64, 130},
                        {100, 37}, {1025, 9}, {2100, 80}}) {
      auto x = Random(T * K, 50 + T);
      std::vector<float> w_exact;
      Tensor w = MakeWeights(Random(N * K, 51 + K, 0.1f), dt, {N, K}, &w_exact);
      auto bias = Random(N, 52);
      Tensor bias_t(DType::kF32, {N}), xt(DType::kF32, {T, K}), out(DType::kF32, {T, N});
      std::copy(bias.begin(), bias.end(), bias_t.As<float>());
      std::copy(x.begin(), x.end(), xt.As<float>());
      std::vector<float> want(T * N), want_f32(T * N);
      reference::MatMul(x.data(), w_exact.data(), DType::kF32, bias.data(), want_f32.data(), T, K, N);
      if (bf16_path)
        reference::MatMulBf16Activations(x.data(), w_exact.data(), DType::kF32, bias.data(), want.data(), T, K, N);
      else
        want = want_f32;
      be->MatMul(out, xt, w, bias_t);
      EXPECT_LT(MaxRelErr(want, out.As<float>()), 2e-5f) << "T=" << T << " K=" << K << " N=" << N;
      if (bf16_path && K >= 31) {  // the rounding is really there: the f32 result is out of reach
        EXPECT_GT(MaxRelErr(want_f32, out.As<float>()), 2e-5f) << "T=" << T << " K=" << K;
      }
      be->MatMul(out, xt, w, TensorView{});
      for (int64_t t = 0; t < T; ++t)
        for (int64_t n = 0; n < N; ++n) want[t * N + n] -= bias[n];
      EXPECT_LT(MaxRelErr(want, out.As<float>()), 2e-5f) << "no bias T=" << T << " K=" << K;
      if (T < kBf16MinRows) {  // kAuto keeps small batches (decode) exact
        be_auto->MatMul(out, xt, w, bias_t);
        EXPECT_LT(MaxRelErr(want_f32, out.As<float>()), 2e-5f) << "auto T=" << T << " K=" << K;
      }
    }
  }
}

// kAuto with the step's sequences announced (BeginBatch): bf16 activations for the rows of a
// sequence with at least kBf16MinRows new tokens, f32 for the others, whatever the batch's total.
TEST_P(CpuKernels, AutoPrecisionIsChosenPerSequence) {
  const DType dt = GetParam().w_dtype;
  const bool bf16_path = GetParam().isa == Isa::kAvx512 && dt == DType::kBF16;
  auto be = Create(MatMulPrecision::kAuto);
  const int64_t K = 70, N = 90;
  std::vector<float> w_exact;
  Tensor w = MakeWeights(Random(N * K, 71, 0.1f), dt, {N, K}, &w_exact);
  // A 40-token prefill chunk between two decode rows; then 40 decode rows (one per sequence).
  for (const std::vector<int32_t>& lens : {std::vector<int32_t>{1, 40, 1}, std::vector<int32_t>(40, 1)}) {
    std::vector<AttentionSeq> seqs;
    int32_t T = 0;
    for (int32_t len : lens) {
      seqs.push_back({T, len, len, {}});
      T += len;
    }
    std::vector<int32_t> tokens(T, 0);
    be->BeginBatch({.tokens = tokens, .seqs = seqs});
    auto x = Random((size_t)T * K, 72);
    std::vector<float> want_f32(T * N), want_bf16(T * N);
    reference::MatMul(x.data(), w_exact.data(), DType::kF32, nullptr, want_f32.data(), T, K, N);
    reference::MatMulBf16Activations(x.data(), w_exact.data(), DType::kF32, nullptr, want_bf16.data(), T, K, N);
    Tensor xt(DType::kF32, {T, K}), out(DType::kF32, {T, N});
    std::copy(x.begin(), x.end(), xt.As<float>());
    be->MatMul(out, xt, w, TensorView{});
    for (const AttentionSeq& seq : seqs) {
      const bool bf16 = bf16_path && seq.q_len >= kBf16MinRows;
      const auto b = (bf16 ? want_bf16 : want_f32).begin() + (int64_t)seq.q_begin * N;
      const std::vector<float> want(b, b + (int64_t)seq.q_len * N);
      EXPECT_LT(MaxRelErr(want, out.As<float>() + (int64_t)seq.q_begin * N), 2e-5f)
          << "rows " << seq.q_begin << "+" << seq.q_len << " of " << T;
    }
  }
}

// Backend::MatMuls with f32/bf16/f16 weights: decode rows (one region over all the jobs' rows)
// and longer ones give exactly the products one by one; bias on one job.
TEST_P(CpuKernels, MatMulsSameAsOneByOne) {
  const DType dt = GetParam().w_dtype;
  const int64_t K = 70;
  std::vector<Tensor> w;
  std::vector<TensorView> wv;
  std::vector<float> exact;
  for (int64_t N : {130, 64, 1}) {
    w.push_back(MakeWeights(Random(N * K, 80 + (uint32_t)N, 0.1f), dt, {N, K}, &exact));
    wv.push_back(w.back().view());
  }
  Tensor bias_t(DType::kF32, {64});
  auto bias = Random(64, 89);
  std::copy(bias.begin(), bias.end(), bias_t.As<float>());
  const int64_t Ts[] = {1, 2, 4, 5, 8, 9, 40};
  ExpectMatMulsSameAsOneByOne(*backend_, wv, bias_t.view(), 1, Ts, 90);
}

// AVX-512 / AVX2 decode: two rows (two sequences in one step) run the one-row kernel's sums, so
// each row gets the same bits as when it is alone in its step (DotRowsSeq, RowsSeq). K values
// cover the 64-wide step, its masked tail and a K below one step.
TEST_P(CpuKernels, TwoDecodeRowsGetTheBitsOfOne) {
  if (GetParam().isa == Isa::kScalar) GTEST_SKIP() << "a property of the SIMD decode kernels";
  const DType dt = GetParam().w_dtype;
  for (auto [K, N] : {std::pair<int64_t, int64_t>{1030, 67}, {64, 130}, {20, 9}, {3072, 33}}) {
    std::vector<float> exact;
    Tensor w = MakeWeights(Random(N * K, 7 + (uint32_t)K, 0.1f), dt, {N, K}, &exact);
    auto bias = Random(N, 11);
    Tensor bias_t(DType::kF32, {N});
    std::copy(bias.begin(), bias.end(), bias_t.As<float>());
    const auto x = Random(2 * K, 13 + (uint32_t)N);
    Tensor x2(DType::kF32, {2, K}), out2(DType::kF32, {2, N});
    std::copy(x.begin(), x.end(), x2.As<float>());
    backend_->MatMul(out2, x2, w, bias_t);
    for (int64_t t = 0; t < 2; ++t) {
      Tensor x1(DType::kF32, {1, K}), out1(DType::kF32, {1, N});
      std::copy(x.begin() + t * K, x.begin() + (t + 1) * K, x1.As<float>());
      backend_->MatMul(out1, x1, w, bias_t);
      for (int64_t n = 0; n < N; ++n)
        ASSERT_EQ(out1.As<float>()[n], out2.As<float>()[t * N + n])
            << "row " << t << " n=" << n << " K=" << K;
    }
  }
}

// out += x . w^T: the small-K f32 path (LoRA ranks) and the generic path (other dtypes, large K).
TEST_P(CpuKernels, MatMulAddMatchesReference) {
  const DType dt = GetParam().w_dtype;
  for (int64_t T : {1, 3, 17}) {
    for (auto [K, N] : {std::pair<int64_t, int64_t>{1, 7}, {4, 64}, {16, 300}, {33, 129}, {300, 40}}) {
      auto x = Random(T * K, 5 + T);
      std::vector<float> w_exact;
      Tensor w = MakeWeights(Random(N * K, 6 + K, 0.1f), dt, {N, K}, &w_exact);
      auto init = Random(T * N, 7);
      std::vector<float> want(T * N);
      reference::MatMul(x.data(), w_exact.data(), DType::kF32, nullptr, want.data(), T, K, N);
      for (int64_t i = 0; i < T * N; ++i) want[i] += init[i];
      Tensor xt(DType::kF32, {T, K}), out(DType::kF32, {T, N});
      std::copy(x.begin(), x.end(), xt.As<float>());
      std::copy(init.begin(), init.end(), out.As<float>());
      backend_->MatMulAdd(out, xt, w);
      EXPECT_LT(MaxRelErr(want, out.As<float>()), 2e-5f) << "T=" << T << " K=" << K << " N=" << N;
    }
  }
}

TEST_P(CpuKernels, RmsNormRopeSiluMatchReference) {
  const int64_t T = 7, H = 3, hd = 34;
  auto x = Random(T * H * hd, 11);
  auto w = Random(hd, 12);
  Tensor xt(DType::kF32, {T, H * hd}), wt(DType::kF32, {hd}), out(DType::kF32, {T, H * hd});
  std::copy(x.begin(), x.end(), xt.As<float>());
  std::copy(w.begin(), w.end(), wt.As<float>());
  std::vector<float> want(x.size());
  reference::RmsNorm(x.data(), w.data(), want.data(), T * H, hd, 1e-6f);
  backend_->RmsNorm(out, xt, wt, 1e-6f);
  EXPECT_LT(MaxRelErr(want, out.As<float>()), 1e-5f);

  RopeTable rope;
  for (int i = 0; i < hd / 2; ++i) rope.inv_freq.push_back(std::pow(10000.0f, -2.0f * i / hd));
  rope.attention_scaling = 1.1f;
  std::vector<int32_t> pos = {0, 1, 5, 100, 4095, 7, 7};
  want = x;
  reference::Rope(want.data(), T, H, hd, pos.data(), rope.inv_freq, rope.attention_scaling);
  backend_->Rope(xt, H, hd, pos, rope);
  EXPECT_LT(MaxRelErr(want, xt.As<float>()), 1e-5f);

  const int64_t F = 45;
  auto g = Random(T * F, 13, 3.0f), u = Random(T * F, 14);
  g[0] = -100.0f, g[1] = 100.0f, g[2] = -30.0f, g[3] = 0.0f, g[4] = 88.0f;  // exp's range ends
  Tensor gt(DType::kF32, {T, F}), ut(DType::kF32, {T, F}), so(DType::kF32, {T, F});
  std::copy(g.begin(), g.end(), gt.As<float>());
  std::copy(u.begin(), u.end(), ut.As<float>());
  std::vector<float> sw(T * F);
  reference::SiluMul(g.data(), u.data(), sw.data(), T * F);
  backend_->SiluMul(so, gt, ut);
  EXPECT_LT(MaxRelErr(sw, so.As<float>()), 1e-5f);
}

// kAuto inside a step decides per sequence: a batch of one 40-token prefill chunk and 35 one-token
// decode rows (more than kBf16MinRows rows in all) gives the decode rows exactly the f32 result and
// the prefill rows exactly the bf16 result each gets alone, bit for bit, so batching never changes
// a request's arithmetic. The LM head over gathered rows (T != the step's rows) stays f32.
TEST_P(CpuKernels, AutoPrecisionIsPerSequence) {
  const DType dt = GetParam().w_dtype;
  auto be_auto = Create(MatMulPrecision::kAuto);
  auto be_bf16 = Create(MatMulPrecision::kBF16);
  const int64_t K = 96, N = 70, P = 40, D = 35, T = P + D;
  std::vector<float> w_exact;
  Tensor w = MakeWeights(Random(N * K, 7, 0.1f), dt, {N, K}, &w_exact);
  auto x = Random(T * K, 8);
  Tensor xt(DType::kF32, {T, K}), out(DType::kF32, {T, N});
  std::copy(x.begin(), x.end(), xt.As<float>());
  // Rows: decode seqs 0..9, the prefill chunk, decode seqs 10..34.
  std::vector<int32_t> table = {0};
  std::vector<AttentionSeq> seqs;
  std::vector<bool> prefill_row(T, false);
  for (int i = 0; i < 10; ++i) seqs.push_back({i, 1, 5, table});
  seqs.push_back({10, (int32_t)P, (int32_t)P, table});
  for (int64_t r = 10; r < 10 + P; ++r) prefill_row[r] = true;
  for (int i = 0; i < 25; ++i) seqs.push_back({(int32_t)(10 + P + i), 1, 5, table});
  std::vector<int32_t> tokens(T, 0);
  be_auto->BeginBatch({.tokens = tokens, .seqs = seqs});
  be_auto->MatMul(out, xt, w, TensorView{});
  std::vector<float> want_f32(T * N), want_bf16(T * N);
  {
    Tensor o(DType::kF32, {T, N});
    backend_->MatMul(o, xt, w, TensorView{});  // f32 backend
    std::copy(o.As<float>(), o.As<float>() + T * N, want_f32.begin());
    be_bf16->MatMul(o, xt, w, TensorView{});
    std::copy(o.As<float>(), o.As<float>() + T * N, want_bf16.begin());
  }
  for (int64_t r = 0; r < T; ++r)
    for (int64_t n = 0; n < N; ++n) {
      const float want = prefill_row[r] ? want_bf16[r * N + n] : want_f32[r * N + n];
      ASSERT_EQ(out.As<float>()[r * N + n], want) << "row " << r << " col " << n;
    }
  // Gathered rows inside the step (an LM head over 35 rows): f32.
  Tensor x35(DType::kF32, {D, K}), o35(DType::kF32, {D, N});
  std::copy(x.begin(), x.begin() + D * K, x35.As<float>());
  be_auto->MatMul(o35, x35, w, TensorView{});
  for (int64_t i = 0; i < D * N; ++i) ASSERT_EQ(o35.As<float>()[i], want_f32[i]) << i;
}

// What a KV cache of `dt` will hold for these values: bf16 rounding, or int8 codes times the
// scale of each head vector (hd elements), dequantized.
void RoundLikeCache(DType dt, int hd, std::vector<float>& x) {
  if (dt == DType::kBF16)
    for (auto& f : x) f = BF16ToF32(F32ToBF16(f));
  if (dt == DType::kI8) {
    std::vector<int8_t> q(hd);
    for (size_t i = 0; i + hd <= x.size(); i += hd) {
      const float s = QuantizeKvI8(x.data() + i, hd, q.data());
      for (int d = 0; d < hd; ++d) x[i + d] = q[d] * s;
    }
  }
}

TEST(KvQuant, RoundTripWithinHalfAStep) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int n : {1, 7, 64, 128, 129}) {
    std::vector<float> x(n);
    for (auto& f : x) f = nd(rng);
    std::vector<int8_t> q(n);
    const float s = QuantizeKvI8(x.data(), n, q.data());
    float amax = 0;
    for (float f : x) amax = std::max(amax, std::fabs(f));
    EXPECT_FLOAT_EQ(s, amax / 127.0f);
    for (int i = 0; i < n; ++i) {
      EXPECT_LE(std::abs((int)q[i]), 127);
      EXPECT_LE(std::fabs(q[i] * s - x[i]), 0.5f * s * 1.0001f) << n << " " << i;
    }
  }
  std::vector<float> zeros(16, 0.0f);
  std::vector<int8_t> q(16, 1);
  EXPECT_EQ(QuantizeKvI8(zeros.data(), 16, q.data()), 0.0f);  // no NaN, codes 0
  for (int8_t c : q) EXPECT_EQ(c, 0);
  EXPECT_EQ(KvHeadVectorBytes(DType::kI8, 128), 132);
  EXPECT_EQ(KvHeadVectorBytes(DType::kBF16, 128), 256);
  EXPECT_TRUE(ParseKvCacheDType("int8").ok());
  EXPECT_FALSE(ParseKvCacheDType("f16").ok());  // the CPU attention reads f32, bf16 and int8 only
}

// Paged attention over a shuffled block table, two sequences (one prefill chunk, one decode), GQA,
// with and without a sliding window, KV in f32, bf16 and int8.
TEST_P(CpuKernels, PagedAttentionMatchesReference) {
  const int Hq = 6, Hkv = 2, hd = 20, bs = 4;
  for (DType kv_dtype : {DType::kF32, DType::kBF16, DType::kI8}) {
    for (int window : {0, 5}) {
      KvCacheLayout layout{.n_layers = 1, .n_kv_heads = Hkv, .head_dim = hd, .block_size = bs,
                           .n_blocks = 16, .dtype = kv_dtype};
      auto cache = backend_->AllocateKvCache(layout);
      // seq 0: ctx 11, 3 new rows; seq 1: ctx 9, 1 new row. Blocks interleaved in the pool.
      std::vector<int32_t> bt0 = {5, 2, 9}, bt1 = {0, 7, 12};
      std::vector<int> ctx = {11, 9}, qlen = {3, 1};
      std::vector<std::vector<int32_t>*> bts = {&bt0, &bt1};
      std::vector<float> q_all, out_want;
      for (int s = 0; s < 2; ++s) {
        auto k = Random((size_t)ctx[s] * Hkv * hd, 20 + s), v = Random((size_t)ctx[s] * Hkv * hd, 30 + s);
        // What the cache will hold (rounded to the KV dtype).
        Tensor kt(DType::kF32, {ctx[s], Hkv * hd}), vt(DType::kF32, {ctx[s], Hkv * hd});
        std::copy(k.begin(), k.end(), kt.As<float>());
        std::copy(v.begin(), v.end(), vt.As<float>());
        std::vector<int64_t> slots;
        for (int t = 0; t < ctx[s]; ++t) slots.push_back((int64_t)(*bts[s])[t / bs] * bs + t % bs);
        backend_->StoreKv(*cache, 0, kt, vt, slots);
        RoundLikeCache(kv_dtype, hd, k);
        RoundLikeCache(kv_dtype, hd, v);
        auto q = Random((size_t)qlen[s] * Hq * hd, 40 + s);
        std::vector<float> o(q.size());
        reference::Attention(q.data(), k.data(), v.data(), o.data(), qlen[s], ctx[s], Hq, Hkv, hd,
                             0.3f, window);
        q_all.insert(q_all.end(), q.begin(), q.end());
        out_want.insert(out_want.end(), o.begin(), o.end());
      }
      Tensor qt(DType::kF32, {4, Hq * hd}), ot(DType::kF32, {4, Hq * hd});
      std::copy(q_all.begin(), q_all.end(), qt.As<float>());
      std::vector<AttentionSeq> seqs = {{0, 3, 11, bt0}, {3, 1, 9, bt1}};
      backend_->Attention(ot, qt, *cache, seqs,
                          AttentionParams{.layer = 0, .n_heads = Hq, .n_kv_heads = Hkv, .head_dim = hd,
                                          .scale = 0.3f, .sliding_window = window});
      EXPECT_LT(MaxRelErr(out_want, ot.As<float>()), 1e-5f)
          << DTypeName(kv_dtype) << " window " << window;
    }
  }
}

// Longer prefills, where the AVX-512 build takes the tiled path (16 query vectors per tile, keys in
// chunks of up to 16 inside a cache block): GQA groups 1, 2, 3 and 8, head dims 128 and 20 (not a
// multiple of 16), block sizes 16 and 5 (chunks cut short by block ends), whole prompts and chunked
// prefill after a cached prefix, partial last tiles, sliding windows, f32 and bf16 KV.
TEST_P(CpuKernels, TiledPrefillAttentionMatchesReference) {
  struct Shape { int hq, hkv, hd, bs, ctx, qlen, window; };
  const Shape shapes[] = {{2, 2, 128, 16, 37, 37, 0},  {4, 2, 128, 16, 70, 29, 0},
                          {6, 2, 20, 5, 41, 41, 0},    {3, 1, 20, 16, 50, 23, 7},
                          {8, 1, 34, 5, 33, 9, 0},     {4, 2, 128, 16, 100, 100, 19},
                          {16, 8, 128, 16, 48, 48, 0}, {2, 1, 16, 4, 20, 1, 0},
                          // one-row decode (RowGroup: all query heads of a kv head per unit)
                          {16, 8, 128, 16, 70, 1, 0},  {8, 2, 34, 5, 33, 1, 9},
                          // decode rows with head dims of whole 16-lane pieces (AVX-512 RowGroup16:
                          // keys in fours, heads in fours or twos, P.V in register blocks)
                          {3, 1, 64, 5, 37, 1, 0},     {8, 1, 64, 16, 5, 1, 0},
                          {12, 4, 128, 16, 130, 1, 40}, {4, 4, 16, 4, 1, 1, 0},
                          {16, 8, 128, 5, 103, 1, 0},  {10, 2, 256, 16, 22, 1, 0},
                          {6, 1, 48, 16, 19, 1, 0}};
  for (DType kv_dtype : {DType::kF32, DType::kBF16, DType::kI8}) {
    for (const Shape& sh : shapes) {
      const int n_blocks = (sh.ctx + sh.bs - 1) / sh.bs;
      KvCacheLayout layout{.n_layers = 1, .n_kv_heads = sh.hkv, .head_dim = sh.hd, .block_size = sh.bs,
                           .n_blocks = 2 * n_blocks + 1, .dtype = kv_dtype};
      auto cache = backend_->AllocateKvCache(layout);
      std::vector<int32_t> table(n_blocks);
      for (int b = 0; b < n_blocks; ++b) table[b] = 2 * (n_blocks - 1 - b) + 1;  // reversed, gapped
      auto k = Random((size_t)sh.ctx * sh.hkv * sh.hd, 60), v = Random((size_t)sh.ctx * sh.hkv * sh.hd, 61);
      Tensor kt(DType::kF32, {sh.ctx, sh.hkv * sh.hd}), vt(DType::kF32, {sh.ctx, sh.hkv * sh.hd});
      std::copy(k.begin(), k.end(), kt.As<float>());
      std::copy(v.begin(), v.end(), vt.As<float>());
      std::vector<int64_t> slots;
      for (int t = 0; t < sh.ctx; ++t) slots.push_back((int64_t)table[t / sh.bs] * sh.bs + t % sh.bs);
      backend_->StoreKv(*cache, 0, kt, vt, slots);
      RoundLikeCache(kv_dtype, sh.hd, k);
      RoundLikeCache(kv_dtype, sh.hd, v);
      auto q = Random((size_t)sh.qlen * sh.hq * sh.hd, 62);
      std::vector<float> want(q.size());
      const float scale = 1.0f / std::sqrt((float)sh.hd);
      reference::Attention(q.data(), k.data(), v.data(), want.data(), sh.qlen, sh.ctx, sh.hq, sh.hkv,
                           sh.hd, scale, sh.window);
      Tensor qt(DType::kF32, {sh.qlen, sh.hq * sh.hd}), ot(DType::kF32, {sh.qlen, sh.hq * sh.hd});
      std::copy(q.begin(), q.end(), qt.As<float>());
      std::vector<AttentionSeq> seqs = {{0, sh.qlen, sh.ctx, table}};
      backend_->Attention(ot, qt, *cache, seqs,
                          AttentionParams{.layer = 0, .n_heads = sh.hq, .n_kv_heads = sh.hkv,
                                          .head_dim = sh.hd, .scale = scale, .sliding_window = sh.window});
      EXPECT_LT(MaxRelErr(want, ot.As<float>()), 1e-5f)
          << DTypeName(kv_dtype) << " hq " << sh.hq << " hkv " << sh.hkv << " hd " << sh.hd << " bs "
          << sh.bs << " ctx " << sh.ctx << " qlen " << sh.qlen << " window " << sh.window;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllIsas, CpuKernels,
    testing::Values(Case{Isa::kScalar, DType::kF32}, Case{Isa::kScalar, DType::kBF16},
                    Case{Isa::kAvx2, DType::kF32}, Case{Isa::kAvx2, DType::kBF16},
                    Case{Isa::kAvx2, DType::kF16}, Case{Isa::kAvx512, DType::kF32},
                    Case{Isa::kAvx512, DType::kBF16}, Case{Isa::kAvx512, DType::kF16}),
    Name);

}  // namespace
}  // namespace petrel::kernels
