#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace petrel {
namespace {

TEST(ThreadPool, ParallelForCoversRangeOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 64, 1000, 4097}) {
      std::vector<std::atomic<int>> hits(n);
      for (int rep = 0; rep < 50; ++rep) {
        pool.ParallelFor(n, 16, [&](int64_t b, int64_t e, int) {
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
      }
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 50) << "n=" << n << " i=" << i;
    }
  }
}

TEST(ThreadPool, ChunksAreGrainAligned) {
  ThreadPool pool(3);
  std::atomic<int> bad{0};
  pool.ParallelFor(100, 32, [&](int64_t b, int64_t e, int) {
    if (b % 32 != 0) bad++;
    if (e != 100 && e % 32 != 0) bad++;
  });
  EXPECT_EQ(bad.load(), 0);
}

TEST(ThreadPool, RunOnAllUsesEveryThread) {
  ThreadPool pool(4);
  std::vector<int> seen(4, 0);
  pool.RunOnAll([&](int t) { seen[t] = 1; });
  for (int v : seen) EXPECT_EQ(v, 1);
}

}  // namespace
}  // namespace petrel
