// Picks a backend by name, so model and CLI code never name a concrete backend.
#pragma once

#include <memory>
#include <string>

#include "core/error.h"
#include "kernels/backend.h"

namespace petrel::kernels {

// device: "cpu", "cuda" (GPU 0) or "cuda:N". n_threads: CPU worker threads (0 = all; the CUDA
// backend ignores it). Errors: kInvalidArgument for an unknown name, and whatever
// CreateCudaBackend() reports (built without CUDA, no such GPU). precision: the CPU matmul's
// (MatMulPrecision); the CUDA backend ignores it.
Result<std::unique_ptr<Backend>> CreateBackend(const std::string& device, int n_threads,
                                               MatMulPrecision precision = MatMulPrecision::kAuto);

}  // namespace petrel::kernels
