// Sampling on the device: one token per row of logits [R, V] (f32) with temperature, top-k,
// top-p and min-p, and the log-softmax of the chosen token and of the n best (raw logits). Only
// these results go back to the host, not the logits. See sample.cu for the algorithm.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace petrel::kernels::cuda {

// Per-row parameters, as kernels::SampleSpec (backend.h), in a plain layout the kernel reads.
struct SampleRowParams {
  float temperature;   // 0 = greedy (first maximal logit)
  int32_t top_k;       // <= 0 or >= V: off
  float top_p;         // (0, 1]
  float min_p;         // [0, 1]
  uint64_t seed;       // Philox key
  uint64_t step;       // Philox counter (high half)
  int32_t top_logprobs;  // -1: none; 0: chosen token; n <= kMaxSampleTop: n best too
  int32_t skip;        // nonzero: nothing is written for this row
};

constexpr int kMaxSampleTop = 32;

// Outputs (device memory): ids[R], logprobs[R], top_ids[R * kMaxSampleTop],
// top_logprobs[R * kMaxSampleTop] (row r's n best at r * kMaxSampleTop, best first).
struct SampleOutputs {
  int32_t* ids = nullptr;
  float* logprobs = nullptr;
  int32_t* top_ids = nullptr;
  float* top_logprobs = nullptr;
  int32_t* feed = nullptr;  // optional: ids[R] written here too (the next step's tokens)
};

void LaunchSample(const float* logits, int64_t rows, int64_t V, const SampleRowParams* params,
                  const SampleOutputs& out, cudaStream_t stream);

// One Philox4x32-10 block (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11)
// on the host, for tests: the same function the kernel uses for its uniforms.
void Philox4x32(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

}  // namespace petrel::kernels::cuda
