// Portable elementwise kernels (elementwise.h), compiled without ISA flags: the reference order
// of arithmetic that the AVX-512 versions reproduce bit for bit.
#include <cmath>

#include "kernels/cpu/elementwise.h"

namespace petrel::kernels::cpu {

void RmsNormRow(const float* x, const float* w, float* out, int64_t d, float eps) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= d; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += x[i + j] * x[i + j];
  float ss = 0;
  for (; i < d; ++i) ss += x[i] * x[i];
  for (int j = 0; j < 16; ++j) ss += acc[j];
  const float inv = 1.0f / std::sqrt(ss / (float)d + eps);
  for (int64_t k = 0; k < d; ++k) out[k] = w[k] * (x[k] * inv);
}

}  // namespace petrel::kernels::cpu
