// Compiled instead of src/kernels/cuda/ when petrel is built without -DPETREL_CUDA=ON.
#include "kernels/backend.h"

namespace petrel::kernels {

Result<std::unique_ptr<Backend>> CreateCudaBackend(int device) {
  return Unsupported("device cuda:", device,
                     ": this petrel was built without CUDA (configure with -DPETREL_CUDA=ON, "
                     "or `make build-cuda`)");
}

}  // namespace petrel::kernels
