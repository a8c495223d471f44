// Quantized weights: block round trips (NMSE budget per type) and every quantized matmul kernel
// (each ISA level this CPU has) against the scalar reference, on random data of odd sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/quant_blocks.h"
#include "kernels/backend.h"
#include "matmuls_check.h"
#include "core/thread_pool.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/quant_matmul.h"
#include "kernels/cpu/quant_matmul_packed.h"
#include "kernels/reference/quant_reference.h"
#include "kernels/reference/reference.h"
#include "test_random.h"

namespace petrel::kernels {
namespace {

using cpu::Isa;

using test::Random;

double Nmse(const std::vector<float>& want, const float* got) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += ((double)want[i] - got[i]) * ((double)want[i] - got[i]);
    den += (double)want[i] * want[i];
  }
  return den > 0 ? num / den : num;
}

struct TypeCase {
  DType dtype;
  int64_t group;
  double roundtrip_nmse;  // budget for quantize -> dequantize of N(0, 1) weights
};

std::string TypeName(DType t, int64_t g) { return std::string(DTypeName(t)) + "_g" + std::to_string(g); }

class QuantRoundTrip : public testing::TestWithParam<TypeCase> {};

TEST_P(QuantRoundTrip, WithinBudget) {
  const auto [dt, group, budget] = GetParam();
  const int64_t n = 128 * 3;
  auto x = Random(n, 7);
  std::vector<char> blocks(DTypeBytes(dt, n));
  quant::QuantizeRow(x.data(), n, dt, blocks.data(), group);
  std::vector<float> y(n);
  quant::DequantizeRow(blocks.data(), dt, y.data(), n);
  const double e = Nmse(x, y.data());
  EXPECT_LT(e, budget) << TypeName(dt, group);
  EXPECT_GT(e, 0.0);
  // Exactly representable values survive: a block of zeros, and a constant block.
  std::vector<float> z(64, 0.0f), zy(64);
  quant::QuantizeRow(z.data(), 64, dt, blocks.data(), 32);
  quant::DequantizeRow(blocks.data(), dt, zy.data(), 64);
  for (float v : zy) EXPECT_EQ(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(
    Types, QuantRoundTrip,
    testing::Values(TypeCase{DType::kQ8_0, 32, 5e-5}, TypeCase{DType::kQ4_0, 32, 1.2e-2},
                    TypeCase{DType::kQ4_1, 32, 1.0e-2}, TypeCase{DType::kQ4_1, 64, 1.4e-2},
                    TypeCase{DType::kQ4_1, 128, 1.8e-2}, TypeCase{DType::kQ8_A, 32, 5e-5},
                    TypeCase{DType::kQ8_A, 128, 1e-4}),
    [](const testing::TestParamInfo<TypeCase>& i) { return TypeName(i.param.dtype, i.param.group); });

TEST(QuantBlocks, Q4LayoutIsGgufNibbleOrder) {
  // Byte j of a Q4_0 block holds element j (low nibble) and element j + 16 (high nibble).
  quant::BlockQ4_0 b{};
  b.d = F32ToF16(1.0f);
  b.q[0] = 0x9F;  // element 0 -> 15 - 8 = 7, element 16 -> 9 - 8 = 1
  for (int i = 1; i < 16; ++i) b.q[i] = 0x88;
  float y[32];
  quant::DequantizeRow(&b, DType::kQ4_0, y, 32);
  EXPECT_EQ(y[0], 7.0f);
  EXPECT_EQ(y[16], 1.0f);
  EXPECT_EQ(y[1], 0.0f);
}

struct KernelCase {
  Isa isa;
  DType dtype;
};

class QuantKernels : public testing::TestWithParam<KernelCase> {
 protected:
  void SetUp() override {
    if (GetParam().isa > cpu::DetectIsa()) GTEST_SKIP() << "ISA not available on this CPU";
    setenv("PETREL_ISA", cpu::IsaName(GetParam().isa), 1);
    backend_ = CreateCpuBackend(3);
    unsetenv("PETREL_ISA");
  }
  std::unique_ptr<Backend> backend_;
};

TEST_P(QuantKernels, MatMulMatchesReference) {
  const DType dt = GetParam().dtype;
  for (int64_t T : {1, 2, 3, 4, 5, 7, 13, 70}) {
    for (auto [K, N] : {std::pair<int64_t, int64_t>{32, 1}, {96, 5}, {64, 64}, {160, 37},
                        {1056, 9}, {2080, 21}, {160, 48}, {1056, 32}}) {
      auto x = Random(T * K, 1 + T + K);
      auto wf = Random(N * K, 2 + K + N, 0.05f);
      Tensor w(dt, {N, K});
      for (int64_t n = 0; n < N; ++n)
        quant::QuantizeRow(wf.data() + n * K, K, dt, static_cast<char*>(w.data()) + n * DTypeBytes(dt, K),
                           K % 64 == 0 ? 64 : 32);
      auto bias = Random(N, 3);
      Tensor bias_t(DType::kF32, {N});
      std::copy(bias.begin(), bias.end(), bias_t.As<float>());
      Tensor xt(DType::kF32, {T, K});
      std::copy(x.begin(), x.end(), xt.As<float>());
      Tensor out(DType::kF32, {T, N}), out_up(DType::kF32, {T, N});
      backend_->MatMul(out, xt, w, bias_t);
      {  // as the loader does: uploaded first (the CPU packs Q8_0 / Q4_0 / Q4_1 / Q8_A with N % 16
         // == 0)
        setenv("PETREL_ISA", cpu::IsaName(GetParam().isa), 1);
        auto be = CreateCpuBackend(3);
        unsetenv("PETREL_ISA");
        TensorView wv = be->UploadWeight(w.view());
        be->MatMul(out_up, xt, wv, bias_t);
      }

      // 1. Exactly the reference's integer computation, up to f32 rounding.
      std::vector<float> want(T * N);
      reference::QuantMatMul(x.data(), w.data(), dt, bias.data(), want.data(), T, K, N);
      float max_err = 0;
      for (int64_t i = 0; i < T * N; ++i)
        max_err = std::max(max_err, std::abs(want[i] - out.As<float>()[i]) / (1.0f + std::abs(want[i])));
      EXPECT_LT(max_err, 2e-5f) << "T=" << T << " K=" << K << " N=" << N;
      max_err = 0;
      for (int64_t i = 0; i < T * N; ++i)
        max_err = std::max(max_err, std::abs(want[i] - out_up.As<float>()[i]) / (1.0f + std::abs(want[i])));
      EXPECT_LT(max_err, 2e-5f) << "uploaded: T=" << T << " K=" << K << " N=" << N;

      // 2. Close to the f32 product with the dequantized weights (activation rounding only).
      std::vector<float> wd(N * K), exact(T * N);
      ConvertToF32(w.data(), dt, wd.data(), N * K);
      reference::MatMul(x.data(), wd.data(), DType::kF32, nullptr, exact.data(), T, K, N);
      std::vector<float> got(T * N);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t n = 0; n < N; ++n) got[t * N + n] = out.As<float>()[t * N + n] - bias[n];
      EXPECT_LT(Nmse(exact, got.data()), 5e-4) << "T=" << T << " K=" << K << " N=" << N;
    }
  }
}

// Backend::MatMuls (q/k/v, gate/up as the model calls them) gives exactly what the products one
// by one give: decode rows in one region over every job's rows (packed weights: x quantised
// once), more rows job by job; uploaded (packed) and plain weights, a job whose rows are not in
// sixteens (not packed: the grouped path must step aside), a bias on one job.
TEST_P(QuantKernels, MatMulsSameAsOneByOne) {
  const DType dt = GetParam().dtype;
  setenv("PETREL_ISA", cpu::IsaName(GetParam().isa), 1);
  auto be = CreateCpuBackend(2);
  unsetenv("PETREL_ISA");
  const int64_t K = 96;
  for (const std::vector<int64_t>& Ns : {std::vector<int64_t>{80, 48, 16}, {64, 40}, {208, 1008}}) {
    std::vector<Tensor> w;
    std::vector<TensorView> wv;
    for (size_t j = 0; j < Ns.size(); ++j) {
      auto wf = Random(Ns[j] * K, 40 + j, 0.05f);
      w.emplace_back(dt, Shape{Ns[j], K});
      for (int64_t n = 0; n < Ns[j]; ++n)
        quant::QuantizeRow(wf.data() + n * K, K, dt, static_cast<char*>(w.back().data()) + n * DTypeBytes(dt, K));
      wv.push_back(be->UploadWeight(w.back().view()));
    }
    Tensor bias_t(DType::kF32, {Ns[0]});
    auto bias = Random(Ns[0], 49);
    std::copy(bias.begin(), bias.end(), bias_t.As<float>());
    const int64_t Ts[] = {1, 3, 4, 6};
    ExpectMatMulsSameAsOneByOne(*be, wv, bias_t.view(), 0, Ts, 50);
  }
}

TEST_P(QuantKernels, NoBiasAndZeroRows) {
  const DType dt = GetParam().dtype;
  const int64_t T = 3, K = 64, N = 6;
  std::vector<float> x(T * K, 0.0f);  // all-zero activations: d = 0 must not produce NaN
  auto wf = Random(N * K, 5, 0.1f);
  Tensor w(dt, {N, K});
  for (int64_t n = 0; n < N; ++n)
    quant::QuantizeRow(wf.data() + n * K, K, dt, static_cast<char*>(w.data()) + n * DTypeBytes(dt, K));
  Tensor xt(DType::kF32, {T, K});
  std::copy(x.begin(), x.end(), xt.As<float>());
  Tensor out(DType::kF32, {T, N});
  backend_->MatMul(out, xt, w, TensorView{});
  for (int64_t i = 0; i < T * N; ++i) EXPECT_EQ(out.As<float>()[i], 0.0f);
}

std::vector<KernelCase> AllKernelCases() {
  std::vector<KernelCase> v;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    for (DType dt : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ8_A}) v.push_back({isa, dt});
  return v;
}

// The packed (16-row interleaved) Q8_0 / Q4_0 / Q4_1 / Q8_A kernels called directly on a packed
// copy: every ISA level's kernel against the double-precision reference on the plain blocks.
class PackedKernels : public testing::TestWithParam<KernelCase> {};

TEST_P(PackedKernels, MatchesReference) {
  const auto [isa, dt] = GetParam();
  if (isa > cpu::DetectIsa()) GTEST_SKIP() << "ISA not available on this CPU";
  const cpu::PackedMatMulFn fn = isa == Isa::kAvx512 ? cpu::PackedMatMulAvx512 : cpu::PackedMatMulGeneric;
  ThreadPool pool(2);
  for (int64_t T : {1, 2, 3, 4, 5, 6, 7, 8, 9, 131}) {
    // Group counts 1, 2, 3, 5, 7 and 13: whole 4-group super-groups and every size of a last,
    // partial one (PackedChunk).
    // One-token Q4_0 runs 8-group tiles for listed row lengths (K 1024, 3072: 13 and 21 groups
    // give tiles of 8, 4 and 1) and 4-group ones for others.
    for (auto [K, N] : {std::pair<int64_t, int64_t>{32, 16},
                        {96, 48},
                        {160, 32},
                        {1056, 16},
                        {2080, 80},
                        {64, 112},
                        {96, 208},
                        {1024, 208},
                        {3072, 336}}) {
      if (T > 9 && K > 160) continue;  // keeps the scalar case fast
      if (T > 3 && K >= 1024 && N > 16) continue;
      auto x = Random(T * K, 11 + T + K);
      auto wf = Random(N * K, 12 + K + N, 0.05f);
      Tensor w(dt, {N, K});
      for (int64_t n = 0; n < N; ++n)
        quant::QuantizeRow(wf.data() + n * K, K, dt, static_cast<char*>(w.data()) + n * DTypeBytes(dt, K));
      cpu::PackedWeights packed;
      const cpu::PackedQuant* p = packed.Add(w.view(), pool);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(packed.Add(w.view(), pool), p);  // the same memory again: the same copy
      const TensorView pv = cpu::PackedView(*p);
      EXPECT_EQ(pv.NumBytes(), w.NumBytes());
      EXPECT_EQ(packed.Find(pv.data, dt, N, K), p);
      EXPECT_EQ(packed.Find(pv.data, dt, N, K + 32), nullptr);
      EXPECT_EQ(packed.Find(w.data(), dt, N, K), nullptr);  // by the packed view only
      {  // rows unpacked as the plain rows dequantize (the embedding lookup)
        const std::vector<int32_t> rows = {0, (int32_t)N - 1, (int32_t)N / 2, 5 % (int32_t)N};
        std::vector<float> got(rows.size() * K), plain(K);
        cpu::PackedRowsToF32(*p, rows, got.data());
        for (size_t i = 0; i < rows.size(); ++i) {
          quant::DequantizeRow(static_cast<const char*>(w.data()) + rows[i] * DTypeBytes(dt, K), dt,
                               plain.data(), K);
          ASSERT_EQ(std::memcmp(plain.data(), got.data() + i * K, K * sizeof(float)), 0)
              << "row " << rows[i];
        }
      }
      auto bias = Random(N, 13);
      std::vector<float> out(T * N, -1.0f), want(T * N);
      cpu::MatMulArgs m{x.data(), nullptr, dt, bias.data(), out.data(), T, K, N};
      const cpu::QuantActs acts = cpu::PrepareQuantActs(m, pool, isa);
      // In two calls, as the threads' chunks run (the second starting at an odd group).
      const int64_t groups = N / cpu::kPackRows, split = groups / 2 + (groups > 2);
      fn(m, *p, acts, 0, split);
      fn(m, *p, acts, split, groups);
      reference::QuantMatMul(x.data(), w.data(), dt, bias.data(), want.data(), T, K, N);
      float max_err = 0;
      for (int64_t i = 0; i < T * N; ++i)
        max_err = std::max(max_err, std::abs(want[i] - out[i]) / (1.0f + std::abs(want[i])));
      EXPECT_LT(max_err, 2e-5f) << "T=" << T << " K=" << K << " N=" << N;
    }
  }
}

TEST(QuantizeActs, Avx512BitIdenticalToScalar) {
  if (cpu::DetectIsa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512";
  for (int64_t K : {32, 96, 1056}) {
    const int64_t T = 5;
    auto x = Random(T * K, 21 + K, 3.0f);
    std::fill(x.begin(), x.begin() + 32, 0.0f);  // an all-zero block: d = 0
    cpu::QuantActs a[2];
    const int64_t nb = (K / 32 + 1) / 2 * 2;
    std::vector<int8_t> q[2];
    std::vector<float> dexp[2], ds[2];
    std::vector<int32_t> qsum[2];
    for (int i = 0; i < 2; ++i) {
      q[i].assign(T * nb * 32, 99);
      dexp[i].assign(T * nb * 8, -1.0f);
      ds[i].assign(T * nb, -1.0f);
      qsum[i].assign(T * nb, -1);
      a[i] = cpu::QuantActs{T, K, nb, q[i].data(), dexp[i].data(), ds[i].data(), qsum[i].data()};
    }
    cpu::QuantizeActs(x.data(), a[0], 0, T);
    cpu::QuantizeActsAvx512(x.data(), a[1], 0, T);
    EXPECT_EQ(q[0], q[1]) << "K=" << K;
    EXPECT_EQ(dexp[0], dexp[1]) << "K=" << K;
    EXPECT_EQ(ds[0], ds[1]) << "K=" << K;
    EXPECT_EQ(qsum[0], qsum[1]) << "K=" << K;
  }
}

TEST(PackedWeights, BlockTypesWithRowsInSixteens) {
  EXPECT_TRUE(cpu::CanPack(DType::kQ8_0, 32, 64));
  EXPECT_TRUE(cpu::CanPack(DType::kQ4_0, 16, 32));
  EXPECT_TRUE(cpu::CanPack(DType::kQ4_1, 32, 64));
  EXPECT_TRUE(cpu::CanPack(DType::kQ8_A, 32, 64));
  EXPECT_FALSE(cpu::CanPack(DType::kQ8_0, 37, 64));  // rows not a multiple of 16: plain kernel
  EXPECT_FALSE(cpu::CanPack(DType::kQ4_0, 32, 48));  // K not a multiple of 32
  EXPECT_FALSE(cpu::CanPack(DType::kBF16, 32, 64));
  ThreadPool pool(1);
  Tensor w(DType::kQ8_0, {37, 64});
  cpu::PackedWeights packed;
  EXPECT_EQ(packed.Add(w.view(), pool), nullptr);
  EXPECT_EQ(packed.Find(w.data(), DType::kQ8_0, 37, 64), nullptr);
  // A different weight at the same address (type or shape changed) replaces the packed copy.
  Tensor w2(DType::kQ8_0, {32, 64});
  TensorView as_q4{w2.data(), DType::kQ4_0, Shape{32, 64}};
  const cpu::PackedQuant* p8 = packed.Add(w2.view(), pool);
  ASSERT_NE(p8, nullptr);
  const void* v8 = p8->codes;
  EXPECT_EQ(packed.Find(v8, DType::kQ8_0, 32, 64), p8);
  const cpu::PackedQuant* p4 = packed.Add(as_q4, pool);
  ASSERT_NE(p4, nullptr);
  EXPECT_EQ(packed.Find(p4->codes, DType::kQ4_0, 32, 64), p4);
  if (v8 != p4->codes) {
    EXPECT_EQ(packed.Find(v8, DType::kQ8_0, 32, 64), nullptr);
  }
}

std::vector<KernelCase> PackedKernelCases() {
  std::vector<KernelCase> v;
  for (Isa isa : {Isa::kScalar, Isa::kAvx512})
    for (DType dt : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ8_A})
      v.push_back({isa, dt});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, PackedKernels, testing::ValuesIn(PackedKernelCases()),
                         [](const testing::TestParamInfo<KernelCase>& i) {
                           return std::string(cpu::IsaName(i.param.isa)) + "_" + DTypeName(i.param.dtype);
                         });

INSTANTIATE_TEST_SUITE_P(All, QuantKernels, testing::ValuesIn(AllKernelCases()),
                         [](const testing::TestParamInfo<KernelCase>& i) {
                           return std::string(cpu::IsaName(i.param.isa)) + "_" + DTypeName(i.param.dtype);
                         });

}  // namespace
}  // namespace petrel::kernels
