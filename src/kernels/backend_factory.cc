#include "kernels/backend_factory.h"

#include <charconv>

namespace petrel::kernels {

Result<std::unique_ptr<Backend>> CreateBackend(const std::string& device, int n_threads,
                                               MatMulPrecision precision) {
  if (device == "cpu") return CreateCpuBackend(n_threads, precision);
  if (device == "cuda") return CreateCudaBackend(0);
  if (device.rfind("cuda:", 0) == 0) {
    const char* b = device.data() + 5;
    const char* e = device.data() + device.size();
    int index = -1;
    auto [p, ec] = std::from_chars(b, e, index);
    if (ec == std::errc() && p == e && b != e && index >= 0) return CreateCudaBackend(index);
  }
  return InvalidArgument("unknown device \"", device, "\" (cpu, cuda, cuda:N)");
}

Result<MatMulPrecision> ParseMatMulPrecision(const std::string& s) {
  if (s == "auto") return MatMulPrecision::kAuto;
  if (s == "f32") return MatMulPrecision::kF32;
  if (s == "bf16") return MatMulPrecision::kBF16;
  return InvalidArgument("unknown matmul precision \"", s, "\" (auto, f32, bf16)");
}

}  // namespace petrel::kernels
