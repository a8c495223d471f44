// The read-bandwidth probe's access pattern, shared by `petrel bench` (the decode bound),
// bench/weights_pass_bench.cc and bench/stream_bench_avx512.cc (the same pattern over the model's
// matrices): one pass over 64-bit words in order, four independent sums so that the loads are not
// one dependency chain and the compiler cannot drop them.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"

namespace petrel {

inline uint64_t SumWords(const uint64_t* p, int64_t begin, int64_t end) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = begin; i + 4 <= end; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

// One timed pass of the probe over words[0, n) on the pool's threads (each its contiguous part):
// GB/s read. The sums are added to *sink so that the loads cannot be dropped.
inline double ReadPassGBs(ThreadPool& pool, const uint64_t* words, int64_t n, uint64_t* sink) {
  std::vector<uint64_t> sums(pool.size(), 0);
  const auto t0 = std::chrono::steady_clock::now();
  pool.ParallelFor(n, 4096, [&](int64_t b, int64_t e, int t) { sums[t] = SumWords(words, b, e); });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (uint64_t v : sums) *sink += v;
  return (double)n * sizeof(uint64_t) / s / 1e9;
}

}  // namespace petrel
