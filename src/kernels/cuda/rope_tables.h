// RoPE state of the CUDA backend: each RopeTable's inv_freq on the device (uploaded once per
// host array), and the (cos, sin) table of a decode step's positions that the fused head ops of
// every layer read (computed once a step by cuda::LaunchRopeTable, decode_attention.cuh).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <unordered_map>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_memory.h"

namespace petrel::kernels::cuda {

class RopeTables {
 public:
  // inv_freq of `rope` on the device.
  const float* InvFreq(const RopeTable& rope) {
    auto& buf = inv_freq_[rope.inv_freq.data()];
    if (buf.bytes() != rope.inv_freq.size() * sizeof(float)) {
      buf = DeviceBuffer(rope.inv_freq.size() * sizeof(float));
      CUDA_CHECK(cudaMemcpy(buf.get(), rope.inv_freq.data(), buf.bytes(), cudaMemcpyHostToDevice));
    }
    return static_cast<const float*>(buf.get());
  }

  // A new step begins (BeginBatch): the step table is stale.
  void NewStep() { ++step_; }

  // The step table [rows][half] for these device positions and frequencies; `compute` is set
  // when it has not been computed this step (the caller launches LaunchRopeTable into it).
  float2* StepTable(const int32_t* positions, const float* inv_freq, float scaling, int64_t rows,
                    int half, bool& compute) {
    const Key key{step_, positions, inv_freq, scaling, rows, half};
    compute = !(key == key_);
    if (compute) {
      // Sized for the largest fused head-ops batch at once, so that the address (which the
      // graphs of every batch size hold) does not move when a larger batch comes.
      table_.Reserve(std::max<size_t>((size_t)rows * half, kMinEntries) * sizeof(float2));
      key_ = key;
    }
    return static_cast<float2*>(table_.get());
  }

 private:
  static constexpr size_t kMinEntries = 8 * 128;  // 8 rows (DecodeHeadOps) x head_dim 256 / 2
  struct Key {
    int64_t step = -1;
    const int32_t* positions = nullptr;
    const float* inv_freq = nullptr;
    float scaling = 0.0f;
    int64_t rows = 0;
    int half = 0;
    bool operator==(const Key&) const = default;
  };
  std::unordered_map<const float*, DeviceBuffer> inv_freq_;
  DeviceBuffer table_;
  Key key_;
  int64_t step_ = 0;
};

}  // namespace petrel::kernels::cuda
