// Portable elementwise kernels (elementwise.h), compiled without ISA flags: the reference order
// of arithmetic that the AVX-512 versions reproduce bit for bit.
#include <cmath>

#include "kernels/cpu/elementwise.h"

namespace petrel::kernels::cpu {

float LaneDot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

void RmsNormRow(const float* x, const float* w, float* out, int64_t d, float eps) {
  const float inv = 1.0f / std::sqrt(LaneDot(x, x, d) / (float)d + eps);
  for (int64_t k = 0; k < d; ++k) out[k] = w[k] * (x[k] * inv);
}

}  // namespace petrel::kernels::cpu
