// Results of pipelined steps on their way to the host (cuda_backend.cc: ArgMaxAsync,
// SampleRowsAsync), first in first out, at most Backend::kMaxArgMaxInFlight. Each slot's `done`
// event, created once by Init (on the backend's device), is recorded after its copy to the host.
// Internal to the backend.
#pragma once

#include <cuda_runtime.h>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_check.h"

namespace petrel::kernels::cuda {

template <typename Slot>
class ReadbackRing {
 public:
  static constexpr int kSlots = Backend::kMaxArgMaxInFlight;
  ReadbackRing() = default;
  ReadbackRing(const ReadbackRing&) = delete;
  ReadbackRing& operator=(const ReadbackRing&) = delete;
  ~ReadbackRing() {
    for (Slot& s : slots_)
      if (s.done) cudaEventDestroy(s.done);
  }
  void Init() {
    for (Slot& s : slots_) CUDA_CHECK(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
  }
  bool full() const { return count_ == kSlots; }
  bool empty() const { return count_ == 0; }
  Slot& Push() { return slots_[(head_ + count_++) % kSlots]; }
  Slot& Front() { return slots_[head_]; }
  void Pop() {
    head_ = (head_ + 1) % kSlots;
    --count_;
  }

 private:
  Slot slots_[kSlots];
  int head_ = 0, count_ = 0;  // the oldest outstanding slot, and how many
};

}  // namespace petrel::kernels::cuda
