// Recording of the ops of a decode step for CUDA-graph capture: each op's key (everything its
// launch depends on) and its launch, and StepGraphs, which runs, records or replays a step's ops
// (cuda_backend.cc: Submit, BeginBatch, FinishStep). Internal to the backend.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <bit>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/step_timer.h"

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

// The CUDA graphs of decode steps, one per key (the caller's: e.g. row count and batch copy).
// A step is begun as eager (ops run as they come), or as a graph step: replayed when a graph of
// its key exists - each op's key is checked against the recorded one and nothing is launched
// until Finish launches the graph - else recorded (ops run and are kept; Finish captures them).
// An op that differs from the recording makes the step diverge: the ops matched so far run and
// the step is recorded from there (and captured again when it may be).
class StepGraphs {
 public:
  static constexpr size_t kMaxGraphs = 128;  // then all are dropped and recorded again
  StepGraphs() = default;
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;
  ~StepGraphs() { Clear(); }

  // Starts a step: a graph step with `key` when `graph`, else eager.
  void Begin(bool graph, int64_t key);
  // The step may not become a graph (e.g. its index arrays were uploaded ad hoc): leaves replay.
  void NotCapturable(cudaStream_t stream);

  // Runs, records or checks one op.
  template <typename F>
  void Submit(const OpKey& key, F&& launch, cudaStream_t stream) {
    switch (mode_) {
      case Mode::kEager:
        launch(stream);
        return;
      case Mode::kRecord:
        launch(stream);
        tape_.push_back({key, std::forward<F>(launch)});
        return;
      case Mode::kReplay:
        if (replay_pos_ < replay_->ops.size() && replay_->ops[replay_pos_].key == key) {
          ++replay_pos_;
          return;
        }
        Diverge(stream);
        launch(stream);
        tape_.push_back({key, std::forward<F>(launch)});
        return;
    }
  }

  // Ends the step: launches a fully matched graph, or captures a freshly recorded one.
  void Finish(cudaStream_t stream, StepTimer& timer);
  void Clear();

 private:
  enum class Mode { kEager, kRecord, kReplay };
  // Leaves replay: runs the ops matched so far (identical to what was asked) and records from
  // here on.
  void Diverge(cudaStream_t stream);
  void Capture(cudaStream_t stream);

  Mode mode_ = Mode::kEager;
  bool capturable_ = false;
  int64_t key_ = 0;
  std::vector<RecordedOp> tape_;
  std::unordered_map<int64_t, DecodeGraph> graphs_;
  DecodeGraph* replay_ = nullptr;
  size_t replay_pos_ = 0;
};

}  // namespace petrel::kernels::cuda
