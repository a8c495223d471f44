// The read-bandwidth probe's access pattern, shared by `petrel bench` (the decode bound) and
// bench/stream_bench_avx512.cc (the same pattern over the model's matrices): one pass over
// 64-bit words in order, four independent sums so that the loads are not one dependency chain
// and the compiler cannot drop them.
#pragma once

#include <cstdint>

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

}  // namespace petrel
