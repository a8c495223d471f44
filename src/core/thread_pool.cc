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
                          const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(1, chunk);
  if (grain <= 0 || grain > chunk) grain = chunk;
  // Work in units of `grain`; a chunk is 1 .. max_units units.
  const int64_t n_units = (n + grain - 1) / grain;
  const int64_t max_units = std::max<int64_t>(1, chunk / grain);
  const int P = n_threads_;
  if (n_units <= max_units || P == 1) return fn(0, n);
  if ((int)owned_.size() < P) owned_ = std::vector<OwnedRange>(P);
  for (int i = 0; i < P; ++i) {
    owned_[i].next.store(n_units * i / P, std::memory_order_relaxed);
    owned_[i].end = n_units * (i + 1) / P;
  }
  RunOnAll([&](int self) {
    for (int j = 0; j < P; ++j) {
      OwnedRange& r = owned_[(self + j) % P];
      int64_t c = r.next.load(std::memory_order_relaxed);
      while (c < r.end) {
        const int64_t take = std::clamp<int64_t>((r.end - c + 3) / 4, 1, max_units);
        if (!r.next.compare_exchange_weak(c, c + take, std::memory_order_relaxed)) continue;
        fn(c * grain, std::min(n, (c + take) * grain));
        c = r.next.load(std::memory_order_relaxed);
      }
    }
  });
}

void ThreadPool::OwnedForEach(std::span<const int64_t> sizes, int64_t chunk,
                              const std::function<void(int, int64_t, int64_t)>& fn, int64_t grain) {
  chunk = std::max<int64_t>(1, chunk);
  if (grain <= 0 || grain > chunk) grain = chunk;
  // The ranges laid end to end, each padded to whole grains, so that a chunk of the joined space
  // begins at a multiple of `grain` inside its range; a chunk over a boundary is cut there.
  std::vector<int64_t> first(sizes.size() + 1, 0);  // start of range j in the joined space
  for (size_t j = 0; j < sizes.size(); ++j)
    first[j + 1] = first[j] + (std::max<int64_t>(0, sizes[j]) + grain - 1) / grain * grain;
  OwnedFor(first.back(), chunk, [&](int64_t cb, int64_t ce) {
    int j = (int)(std::upper_bound(first.begin(), first.end(), cb) - first.begin()) - 1;
    for (int64_t at = cb; at < ce; ++j) {
      const int64_t e = std::min(ce, first[j + 1]);
      const int64_t b = at - first[j], last = std::min(sizes[j], e - first[j]);
      if (b < last) fn(j, b, last);
      at = e;
    }
  }, grain);
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
