// Recording of the ops of a decode step for CUDA-graph capture (cuda_backend.cc: Submit): each
// op's key (everything its launch depends on) and its launch. Internal to the backend.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <bit>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace petrel::kernels::cuda {

// One recorded op: what it depends on, and how to enqueue it.
struct OpKey {
  std::array<uint64_t, 32> v{};
  int n = 0;
  bool operator==(const OpKey& o) const {
    return n == o.n && std::equal(v.begin(), v.begin() + n, o.v.begin());
  }
};
struct RecordedOp {
  OpKey key;
  std::function<void(cudaStream_t)> launch;
};
struct DecodeGraph {
  std::vector<RecordedOp> ops;
  cudaGraphExec_t exec = nullptr;
};

template <typename... Args>
OpKey MakeKey(Args... args) {
  OpKey k;
  auto add = [&](auto a) {
    PETREL_CHECK(k.n < (int)k.v.size());
    using A = decltype(a);
    if constexpr (std::is_pointer_v<A>) k.v[k.n++] = (uint64_t)(uintptr_t)a;
    else if constexpr (std::is_same_v<A, float>) k.v[k.n++] = std::bit_cast<uint32_t>(a);
    else k.v[k.n++] = (uint64_t)a;
  };
  (add(args), ...);
  return k;
}

}  // namespace petrel::kernels::cuda
