// weights_pass_bench: one decode step's matmuls (T = 1, or --tokens T rows) over all of a
// Qwen3-0.6B-shaped model's weights, matrix by matrix through the CPU backend (28 x
// q/k/v/o/gate/up/down + the LM head, every matrix its own memory, so each pass reads them from
// DRAM), against the read probe of `petrel bench` measured in the same process between passes.
// Prints the median GB/s of weights of each, and microseconds per matrix. Unlike `petrel bench` it
// has no attention or other ops, and unlike matmul_bench no matrix is re-read from the caches, so
// it isolates how close the kernels stream to the bandwidth: the A/B tool for decode kernel changes
// (medians of many alternating passes are stable on a VM whose bandwidth drifts within minutes).
//   weights_pass_bench [--dtype bf16|q8_0|q4_0] [--threads 2] [--passes 30] [--lm-only]
//                      [--tokens T] [--shape N,K --count C]   (C matrices of one shape instead of
//                      the model)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/read_probe.h"
#include "core/thread_pool.h"
#include "kernels/backend.h"

using namespace petrel;

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Deterministic bytes; f16 block scales (Q8_0 / Q4_0: the first 2 bytes of each block) and bf16
// values kept finite and small.
void Fill(Tensor& w, uint32_t seed) {
  auto* p = static_cast<uint8_t*>(w.data());
  const size_t n = w.NumBytes();
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    p[i] = (uint8_t)(seed >> 24);
  }
  const size_t block = w.dtype() == DType::kQ8_0 ? 34 : w.dtype() == DType::kQ4_0 ? 18 : 0;
  if (block)
    for (size_t i = 0; i + block <= n; i += block) p[i] = 0, p[i + 1] = 0x20;  // d = 2^-7
  else
    for (size_t i = 1; i < n; i += 2) p[i] = 0x3c;  // bf16 exponent ~1
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, passes = 30, tokens = 1;
  bool lm_only = false;
  DType dt = DType::kQ4_0;
  int64_t shape_n = 0, shape_k = 0, count = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--threads") threads = std::max(1, std::atoi(v)), ++i;
    else if (a == "--passes") passes = std::max(2, std::atoi(v)), ++i;
    else if (a == "--lm-only") lm_only = true;
    else if (a == "--tokens") tokens = std::max(1, std::atoi(v)), ++i;
    else if (a == "--count") count = std::atoll(v), ++i;
    else if (a == "--shape") {
      shape_n = std::atoll(v);
      const char* c = std::strchr(v, ',');
      shape_k = c ? std::atoll(c + 1) : 0;
      ++i;
    } else if (a == "--dtype") {
      const std::string d = v;
      dt = d == "bf16" ? DType::kBF16 : d == "q8_0" ? DType::kQ8_0 : DType::kQ4_0;
      ++i;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  auto be = kernels::CreateCpuBackend(threads, kernels::MatMulPrecision::kAuto);
  std::vector<Tensor> ws;
  std::vector<TensorView> wv;
  auto add = [&](int64_t N, int64_t K) {
    ws.emplace_back(dt, Shape{N, K});
    Fill(ws.back(), (uint32_t)ws.size() * 7919u + 1);
    wv.push_back(be->UploadWeight(ws.back()));  // as the loader does (packs the block types)
  };
  if (shape_n > 0 && shape_k > 0) {
    for (int64_t i = 0; i < std::max<int64_t>(1, count); ++i) add(shape_n, shape_k);
  } else {
    for (int l = 0; l < (lm_only ? 0 : 28); ++l) {
      add(2048, 1024), add(1024, 1024), add(1024, 1024), add(1024, 2048);
      add(3072, 1024), add(3072, 1024), add(1024, 3072);
    }
    add(151936, 1024);
  }
  double bytes = 0;
  int64_t max_n = 0, max_k = 0;
  for (const Tensor& w : ws) {
    bytes += (double)w.NumBytes();
    max_n = std::max(max_n, w.view().dim(0));
    max_k = std::max(max_k, w.view().dim(1));
  }
  Tensor x(DType::kF32, {tokens, max_k}), out(DType::kF32, {tokens, max_n});
  for (int64_t i = 0; i < tokens * max_k; ++i) x.As<float>()[i] = 0.01f * (float)(i % 13);
  std::vector<uint64_t> probe((1ull << 30) / sizeof(uint64_t), 1);
  ThreadPool pool(threads);
  std::vector<double> probe_gb, pass_gb;
  uint64_t sink = 0;
  for (int p = 0; p <= passes; ++p) {
    const double probe_pass = ReadPassGBs(pool, probe.data(), (int64_t)probe.size(), &sink);
    auto t1 = std::chrono::steady_clock::now();
    for (const TensorView& w : wv) {
      TensorView xv = x, ov = out;
      xv.shape = Shape{tokens, (int64_t)w.dim(1)};
      ov.shape = Shape{tokens, (int64_t)w.dim(0)};
      be->MatMul(ov, xv, w, TensorView{});
    }
    auto t2 = std::chrono::steady_clock::now();
    if (p == 0) continue;  // warm-up
    probe_gb.push_back(probe_pass);
    pass_gb.push_back(bytes / std::chrono::duration<double>(t2 - t1).count() / 1e9);
  }
  const double pg = Median(probe_gb), wg = Median(pass_gb);
  std::printf("%s, %zu matrices, %.0f MB, %d threads%s\n", DTypeName(dt), ws.size(), bytes / 1e6, threads,
              sink == 42 ? " " : "");
  std::printf("probe   median %.1f GB/s\nweights median %.1f GB/s = %.0f%% of the probe, %.2f us per matrix\n", pg,
              wg, 100 * wg / pg, bytes / wg / 1e3 / (double)ws.size());
}
