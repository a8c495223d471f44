// matmul_bench: out[T, N] = x[T, K] . W[N, K]^T on the CPU backend for the Qwen3-0.6B shapes.
// Prints GFLOP/s (prefill shapes) and weight GB/s (decode shapes) per case.
//   matmul_bench [--threads N] [--T 1,4,64,512] [--dtypes bf16,f16,f32,q8_0,q4_0,q4_1,q8_a]
//                [--precision auto|f32|bf16]   (kernels::MatMulPrecision)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_args.h"
#include "kernels/backend.h"

using namespace petrel;

int main(int argc, char** argv) {
  int threads = 2;
  kernels::MatMulPrecision precision = kernels::MatMulPrecision::kAuto;
  std::vector<int64_t> Ts = {1, 4, 16, 128, 512};
  std::vector<DType> dtypes = {DType::kBF16, DType::kF16, DType::kF32};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--precision")) {
      auto p = kernels::ParseMatMulPrecision(argv[i + 1]);
      if (!p.ok()) {
        std::fprintf(stderr, "%s\n", p.error().ToString().c_str());
        return 2;
      }
      precision = *p;
    }
    if (!std::strcmp(argv[i], "--dtypes")) {
      dtypes.clear();
      const std::pair<const char*, DType> names[] = {
          {"bf16", DType::kBF16}, {"f16", DType::kF16}, {"f32", DType::kF32}, {"q8_0", DType::kQ8_0},
          {"q4_0", DType::kQ4_0}, {"q4_1", DType::kQ4_1}, {"q8_a", DType::kQ8_A}};
      for (const std::string& n : bench::SplitCommas(argv[i + 1]))
        for (auto& [name, dt] : names)
          if (n == name) dtypes.push_back(dt);
    }
    if (!std::strcmp(argv[i], "--T")) Ts = bench::ParseInts(argv[i + 1]);
  }
  auto be = kernels::CreateCpuBackend(threads, precision);
  std::printf("ISA %s, %d threads\n", kernels::CpuIsaName(), threads);
  struct Shape { const char* name; int64_t K, N; };
  const Shape shapes[] = {{"q_proj 1024->2048", 1024, 2048}, {"gate 1024->3072", 1024, 3072},
                          {"down 3072->1024", 3072, 1024}, {"lm_head 1024->151936", 1024, 151936}};
  for (DType dt : dtypes) {
    for (const auto& s : shapes) {
      Tensor w(dt, {s.N, s.K});
      std::memset(w.data(), 0x3c, w.NumBytes());
      const TensorView wv = be->UploadWeight(w);  // as the loader does (the CPU packs block types)
      for (int64_t T : Ts) {
        if (s.N > 100000 && T > 16) continue;
        Tensor x(DType::kF32, {T, s.K}), out(DType::kF32, {T, s.N});
        for (int64_t i = 0; i < x.NumElements(); ++i) x.As<float>()[i] = 0.001f * (i % 97);
        be->MatMul(out, x, wv, TensorView{});  // warm-up
        int reps = 0;
        auto t0 = std::chrono::steady_clock::now();
        double el = 0;
        do {
          be->MatMul(out, x, wv, TensorView{});
          ++reps;
          el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        } while (el < 0.3);
        const double per = el / reps;
        std::printf("%-5s %-22s T=%-4lld %8.3f ms  %7.1f GFLOP/s  %6.1f GB/s weights\n", DTypeName(dt), s.name,
                    (long long)T, per * 1e3, 2.0 * T * s.K * s.N / per / 1e9, w.NumBytes() / per / 1e9);
      }
    }
  }
  return 0;
}
