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

// OwnedFor: every index once, chunks begin at multiples of the grain, are at most `chunk` long,
// and (guided) shrink towards the grain at the end of a share. One thread runs [0, n) in one call.
TEST(ThreadPool, OwnedForCoversRangeOnceInGrainAlignedChunks) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 64, 130, 1000, 4097}) {
      for (auto [chunk, grain] : {std::pair<int64_t, int64_t>{64, 0}, {64, 8}, {128, 64}, {5, 1}, {8, 100}}) {
        std::vector<std::atomic<int>> hits(n);
        std::atomic<int> bad{0}, small{0};
        const int64_t g = grain <= 0 || grain > chunk ? chunk : grain;
        pool.OwnedFor(n, chunk, [&](int64_t b, int64_t e) {
          const bool whole = threads == 1 && b == 0 && e == n;  // one thread: one call
          if (!whole && (b % g != 0 || e - b > std::max(chunk, g) || e <= b || (e != n && (e - b) % g != 0))) bad++;
          if (e - b < chunk && e != n) small++;
          for (int64_t i = b; i < e; ++i) hits[i]++;
        }, grain);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
        EXPECT_EQ(bad.load(), 0) << "n=" << n << " chunk=" << chunk << " grain=" << grain;
        // Guided: with a grain below the chunk and several chunks per share, some chunks shrink.
        if (threads > 1 && g < chunk && n >= 4 * chunk * threads) {
          EXPECT_GT(small.load(), 0) << "n=" << n;
        }
      }
    }
  }
}

TEST(ThreadPool, OwnedForEachKeepsChunksInsideRanges) {
  ThreadPool pool(3);
  const std::vector<int64_t> sizes = {100, 0, 37, 256, 1, 64};
  for (auto [chunk, grain] : {std::pair<int64_t, int64_t>{64, 0}, {64, 16}, {32, 32}}) {
    std::vector<std::vector<std::atomic<int>>> hits;
    for (int64_t s : sizes) hits.emplace_back(s);
    std::atomic<int> bad{0};
    const int64_t g = grain <= 0 ? chunk : grain;
    pool.OwnedForEach(sizes, chunk, [&](int j, int64_t b, int64_t e) {
      if (j < 0 || j >= (int)sizes.size() || b < 0 || e > sizes[j] || b >= e || b % g != 0) {
        bad++;
        return;
      }
      for (int64_t i = b; i < e; ++i) hits[j][i]++;
    }, grain);
    EXPECT_EQ(bad.load(), 0) << chunk << "/" << grain;
    for (size_t j = 0; j < sizes.size(); ++j)
      for (int64_t i = 0; i < sizes[j]; ++i) ASSERT_EQ(hits[j][i].load(), 1) << j << ":" << i;
  }
}

TEST(ThreadPool, RunOnAllUsesEveryThread) {
  ThreadPool pool(4);
  std::vector<int> seen(4, 0);
  pool.RunOnAll([&](int t) { seen[t] = 1; });
  for (int v : seen) EXPECT_EQ(v, 1);
}

}  // namespace
}  // namespace petrel
