#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>

namespace petrel {

namespace {
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
constexpr int kSpinIterations = 4000;  // ~100 us of pause before sleeping (pause is ~40-140 cycles)
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::HardwareThreads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  while (true) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      CpuRelax();
      g = generation_.load(std::memory_order_acquire);
    }
    while (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    (*job_)(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

void ThreadPool::RunOnAll(const std::function<void(int)>& fn) {
  if (n_threads_ == 1) {
    fn(0);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  fn(0);
  int p = pending_.load(std::memory_order_acquire);
  for (int spin = 0; p != 0 && spin < kSpinIterations; ++spin) {
    CpuRelax();
    p = pending_.load(std::memory_order_acquire);
  }
  while (p != 0) {
    pending_.wait(p, std::memory_order_acquire);
    p = pending_.load(std::memory_order_acquire);
  }
  job_ = nullptr;
}

void ThreadPool::OwnedFor(int64_t n, int64_t chunk,
                          const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(1, chunk);
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  const int P = n_threads_;
  if (n_chunks <= 1 || P == 1) return fn(0, n);
  if ((int)owned_.size() < P) owned_ = std::vector<OwnedRange>(P);
  for (int i = 0; i < P; ++i) {
    owned_[i].next.store(n_chunks * i / P, std::memory_order_relaxed);
    owned_[i].end = n_chunks * (i + 1) / P;
  }
  RunOnAll([&](int self) {
    for (int j = 0; j < P; ++j) {
      OwnedRange& r = owned_[(self + j) % P];
      for (int64_t c; (c = r.next.fetch_add(1, std::memory_order_relaxed)) < r.end;)
        fn(c * chunk, std::min(n, (c + 1) * chunk));
    }
  });
}

void ThreadPool::OwnedForEach(std::span<const int64_t> sizes, int64_t chunk,
                              const std::function<void(int, int64_t, int64_t)>& fn) {
  chunk = std::max<int64_t>(1, chunk);
  std::vector<int64_t> first(sizes.size() + 1, 0);  // index of range j's first chunk
  for (size_t j = 0; j < sizes.size(); ++j)
    first[j + 1] = first[j] + (std::max<int64_t>(0, sizes[j]) + chunk - 1) / chunk;
  OwnedFor(first.back(), 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      const int j = (int)(std::upper_bound(first.begin(), first.end(), c) - first.begin()) - 1;
      const int64_t b = (c - first[j]) * chunk;
      fn(j, b, std::min(sizes[j], b + chunk));
    }
  });
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t n_grains = (n + grain - 1) / grain;
  const int n_chunks = (int)std::min<int64_t>(n_threads_, n_grains);
  if (n_chunks == 1) {
    fn(0, n, 0);
    return;
  }
  const int64_t per = (n_grains + n_chunks - 1) / n_chunks;
  RunOnAll([&](int t) {
    const int64_t b = std::min(n, (int64_t)t * per * grain);
    const int64_t e = std::min(n, (int64_t)(t + 1) * per * grain);
    if (b < e) fn(b, e, t);
  });
}

}  // namespace petrel
