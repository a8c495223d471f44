// SampleRows' buffers on the device and the host (cuda_backend.cc): one set per batch copy, so
// that a pipelined step's parameters and results never meet the previous step's. Fixed layouts
// sized by a capacity that only grows, so a decode graph keeps its pointers:
// params [cap] | ids [cap] | logprobs [cap] | top_ids [cap * kTop] | top_logprobs [cap * kTop],
// the same on the host (pinned). Internal to the backend.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <span>

#include "kernels/backend.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/sample.cuh"

namespace petrel::kernels::cuda {

class SampleBuffers {
 public:
  static constexpr int kSets = 2;
  // Room for `rows` rows in every set (a reallocation synchronises the device).
  void Reserve(int64_t rows);
  // Set `set`'s parameters filled from specs on the host; returns whether a row asks for top
  // logprobs.
  bool FillParams(int set, std::span<const SampleSpec> specs);
  SampleRowParams* HostParams(int set) const { return At<SampleRowParams>(sets_[set].host.get(), 0); }
  SampleRowParams* DeviceParams(int set) const { return At<SampleRowParams>(sets_[set].dev.get(), 0); }
  SampleOutputs Outputs(int set) const;
  // The results of `rows` rows to set's host copy on `stream` (ids and logprobs, the top entries
  // only when asked for).
  void CopyBack(int set, int64_t rows, bool any_top, cudaStream_t stream) const;
  // The results from set's host copy, once CopyBack has completed.
  void Read(int set, int64_t V, std::span<const SampleSpec> specs, std::span<SampleResult> out) const;

 private:
  static constexpr int kTop = kMaxSampleTop;
  // Section `section` (params, ids, logprobs, top_ids, top_logprobs) of a set.
  template <typename T>
  T* At(void* base, int section) const {
    const int64_t p = (int64_t)sizeof(SampleRowParams);
    const int64_t off[] = {0, p, p + 4, p + 8, p + 8 + 4 * kTop};
    return reinterpret_cast<T*>(static_cast<char*>(base) + cap_ * off[section]);
  }
  struct Set {
    DeviceBuffer dev;
    PinnedBuffer host;
  };
  Set sets_[kSets];
  int64_t cap_ = 0;
};

}  // namespace petrel::kernels::cuda
