// Portable matmul: plain loops the compiler can vectorise for the baseline ISA. Used when the CPU
// has neither AVX2 nor AVX-512, and as the "scalar" variant in tests.
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/matmul.h"

namespace petrel::kernels::cpu {

void MatMulGeneric(const MatMulArgs& a, int64_t n_begin, int64_t n_end) {
  std::vector<float> row(a.K);
  for (int64_t n = n_begin; n < n_end; ++n) {
    // Convert one weight row to f32 once, then dot it with every activation row.
    const char* wr = static_cast<const char*>(a.w) + n * a.K * (int64_t)DTypeSize(a.w_dtype);
    switch (a.w_dtype) {
      case DType::kF32:
        for (int64_t k = 0; k < a.K; ++k) row[k] = reinterpret_cast<const float*>(wr)[k];
        break;
      case DType::kBF16:
        for (int64_t k = 0; k < a.K; ++k) row[k] = BF16ToF32(reinterpret_cast<const uint16_t*>(wr)[k]);
        break;
      default:
        for (int64_t k = 0; k < a.K; ++k) row[k] = F16ToF32(reinterpret_cast<const uint16_t*>(wr)[k]);
        break;
    }
    for (int64_t t = 0; t < a.T; ++t) {
      const float* x = a.x + t * a.K;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 8 <= a.K; k += 8)
        for (int j = 0; j < 8; ++j) acc[j] += x[k + j] * row[k + j];
      float s = 0;
      for (; k < a.K; ++k) s += x[k] * row[k];
      for (int j = 0; j < 8; ++j) s += acc[j];
      a.out[t * a.N + n] = s + (a.bias ? a.bias[n] : 0.0f);
    }
  }
}

}  // namespace petrel::kernels::cpu
