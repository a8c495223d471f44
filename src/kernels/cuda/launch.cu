// The PDL switch of common.cuh (read once from the environment).
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/common.cuh"

namespace petrel::kernels::cuda {

bool PdlEnabled() {
  static const bool on = [] {
    const char* v = std::getenv("PETREL_CUDA_PDL");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

}  // namespace petrel::kernels::cuda
