// A fixed pool of worker threads for data-parallel kernels. ParallelFor splits [0, n) into one
// contiguous chunk per thread; the calling thread runs chunk 0. Workers spin briefly and then sleep
// on an atomic wait, so the ~200 parallel regions of one decode step cost microseconds, not the
// tens of microseconds of a condition variable round trip.
//
// Thread-safety: one ParallelFor at a time per pool (the engine's step loop owns its pool).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <thread>
#include <vector>

namespace petrel {

class ThreadPool {
 public:
  // n_threads counts the caller: ThreadPool(1) runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over a partition of [0, n) into at most size() chunks,
  // each a multiple of `grain` (except the last). Returns when every chunk is done.
  void ParallelFor(int64_t n, int64_t grain,
                   const std::function<void(int64_t, int64_t, int)>& fn);

  // Runs fn(thread_index) once on every thread.
  void RunOnAll(const std::function<void(int)>& fn);

  // Calls fn(begin, end) over [0, n) in chunks: thread i first takes the chunks of its own
  // contiguous i-th share of [0, n) in order, then helps with the others' remaining chunks (from
  // their fronts). A memory-bound kernel then reads one long sequential range per thread, which
  // the hardware prefetchers follow, instead of jumping between interleaved chunks, and a thread
  // slowed down by other load on the machine does not keep the others waiting at the end (as a
  // fixed split into one range per thread does).
  // Chunks are `chunk` long while a share has plenty left, then shrink towards `grain` (a quarter
  // of what is left in the share, "guided" self-scheduling after Polychronopoulos & Kuck, 1987),
  // so the threads finish within one small chunk of each other instead of one large one. Every
  // chunk begins at a multiple of `grain` (0 or > chunk: grain = chunk, fixed chunks); the last
  // may be shorter.
  void OwnedFor(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn,
                int64_t grain = 0);

  // OwnedFor over several ranges [0, sizes[j]) as one region: fn(j, begin, end) for chunks that
  // never cross from one range into the next (the shares of the threads do) and begin at
  // multiples of `grain` inside their range.
  void OwnedForEach(std::span<const int64_t> sizes, int64_t chunk,
                    const std::function<void(int, int64_t, int64_t)>& fn, int64_t grain = 0);

  // Number of hardware threads usable by this process.
  static int HardwareThreads();

 private:
  void WorkerLoop(int index);

  struct alignas(64) OwnedRange {
    std::atomic<int64_t> next{0};
    int64_t end = 0;
  };

  int n_threads_;
  std::vector<OwnedRange> owned_;  // OwnedFor's per-thread ranges
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace petrel
