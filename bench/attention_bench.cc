// attention_bench: one decode row of CPU paged attention over a Qwen3-0.6B-shaped KV cache
// (16 query heads, 8 kv heads, head_dim 128, 16-token blocks), one separate cache per layer for
// 28 layers (--layers) so that each layer's keys and values come from DRAM as in a decode step
// (--layers 1: from the caches, the arithmetic alone; --flush-mb M reads M MB between
// layers, untimed, as the layer's weights do). Prints
// microseconds per layer and the KV bytes read per second, per context length and KV dtype.
//   attention_bench [--threads N] [--ctx 128,512,1024] [--dtypes f32,bf16,int8] [--repeats R] [--layers L]
//                   [--flush-mb M] [--block B]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_args.h"
#include "core/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/isa.h"

using namespace petrel;

int main(int argc, char** argv) {
  int threads = 2, repeats = 20, layers = 28, flush_mb = 0, block = 16;
  std::vector<int> ctxs = {128, 512, 1024};
  std::vector<std::string> dtypes = {"f32", "bf16", "int8"};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--block")) block = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--flush-mb")) flush_mb = std::max(0, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--layers")) layers = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--ctx")) {
      ctxs.clear();
      for (int64_t c : bench::ParseInts(argv[i + 1])) ctxs.push_back((int)c);
    }
    if (!std::strcmp(argv[i], "--dtypes")) {
      dtypes = bench::SplitCommas(argv[i + 1]);
    }
  }
  constexpr int kHeads = 16, kKvHeads = 8, kHd = 128;
  const int kBlock = block;
  const kernels::cpu::AttentionFn fn = kernels::cpu::DetectIsa() == kernels::cpu::Isa::kAvx512
                                           ? kernels::cpu::AttentionAvx512
                                           : kernels::cpu::AttentionGeneric;
  ThreadPool pool(threads);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> q(kHeads * kHd), out(kHeads * kHd);
  std::vector<uint64_t> flush((size_t)flush_mb * (1 << 20) / 8, 1);
  uint64_t sink = 0;
  for (float& v : q) v = dist(rng);
  std::printf("ISA %s, %d threads, %d layers, %d/%d heads, head_dim %d\n",
              kernels::cpu::IsaName(kernels::cpu::DetectIsa()), threads, layers, kHeads, kKvHeads, kHd);
  for (const std::string& dn : dtypes) {
    const DType dt = dn == "bf16" ? DType::kBF16 : dn == "int8" ? DType::kI8 : DType::kF32;
    const size_t elem = dt == DType::kF32 ? 4 : dt == DType::kBF16 ? 2 : 1;
    for (int ctx : ctxs) {
      const int n_blocks = (ctx + kBlock - 1) / kBlock;
      const size_t vecs = (size_t)n_blocks * kBlock * kKvHeads;
      std::vector<std::vector<char>> kp(layers), vp(layers);
      std::vector<std::vector<float>> ks(layers), vs(layers);
      for (int l = 0; l < layers; ++l) {
        kp[l].resize(vecs * kHd * elem);
        vp[l].resize(vecs * kHd * elem);
        for (size_t i = 0; i < kp[l].size(); ++i) kp[l][i] = (char)(rng() & 0x3f), vp[l][i] = (char)(rng() & 0x3f);
        ks[l].assign(vecs, 0.01f);
        vs[l].assign(vecs, 0.01f);
      }
      std::vector<int32_t> table(n_blocks);
      for (int b = 0; b < n_blocks; ++b) table[b] = (b * 7) % n_blocks;  // not in order
      const kernels::AttentionSeq seq{0, 1, ctx, table};
      std::vector<double> per_layer;
      for (int r = 0; r < repeats + 1; ++r) {
        double us = 0;
        for (int l = 0; l < layers; ++l) {
          if (flush_mb) {  // a layer's weights streaming through the caches between attentions
            std::vector<uint64_t> sums(pool.size(), 0);  // on the pool: its workers stay awake
            pool.ParallelFor((int64_t)flush.size(), 4096, [&](int64_t b, int64_t e, int t) {
              for (int64_t i = b; i < e; i += 8) sums[t] += flush[i];
            });
            for (uint64_t v : sums) sink += v;
          }
          const auto t0 = std::chrono::steady_clock::now();
          kernels::cpu::AttentionArgs a{out.data(), q.data(), kp[l].data(), vp[l].data(), dt,
                                        dt == DType::kI8 ? ks[l].data() : nullptr,
                                        dt == DType::kI8 ? vs[l].data() : nullptr, kBlock,
                                        std::span(&seq, 1), {l, kHeads, kKvHeads, kHd, 0.0883883f, 0}};
          fn(a, pool);
          us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        }
        if (r > 0) per_layer.push_back(us / layers);
      }
      std::sort(per_layer.begin(), per_layer.end());
      const double med = per_layer[per_layer.size() / 2];
      const double bytes = 2.0 * ctx * kKvHeads * kHd * elem;
      if (sink == 42) std::printf(" ");
      std::printf("%-5s ctx %5d   %8.1f us/layer   %6.1f GB/s of KV\n", dn.c_str(), ctx, med, bytes / med / 1e3);
    }
  }
}
