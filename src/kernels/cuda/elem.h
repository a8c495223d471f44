// Storage type codes passed between host code and the kernels' launchers (host code does not see
// cuda_fp16.h's types). Translated from petrel::DType once, in cuda_backend.cc.
#pragma once

namespace petrel::kernels::cuda {

enum class Elem : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

}  // namespace petrel::kernels::cuda
