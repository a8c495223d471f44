#include "kernels/reference/quant_reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/quant_blocks.h"

namespace petrel::kernels::reference {

void QuantizeActRow(const float* x, int64_t K, int8_t* q, float* d) {
  for (int64_t b = 0; b < K / 32; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    d[b] = amax / 127.0f;
    const float id = d[b] != 0.0f ? 1.0f / d[b] : 0.0f;
    for (int i = 0; i < 32; ++i) q[b * 32 + i] = (int8_t)std::nearbyint(x[b * 32 + i] * id);
  }
}

void QuantMatMul(const float* x, const void* w, DType w_dtype, const float* bias, float* out,
                 int64_t T, int64_t K, int64_t N) {
  const size_t row_bytes = DTypeBytes(w_dtype, K);
  std::vector<float> wr(K), d(K / 32);
  std::vector<int8_t> q(K);
  for (int64_t t = 0; t < T; ++t) {
    QuantizeActRow(x + t * K, K, q.data(), d.data());
    for (int64_t n = 0; n < N; ++n) {
      quant::DequantizeRow(static_cast<const char*>(w) + n * row_bytes, w_dtype, wr.data(), K);
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += (double)wr[k] * (double)d[k / 32] * (double)q[k];
      out[t * N + n] = (float)(acc + (bias ? bias[n] : 0.0));
    }
  }
}

}  // namespace petrel::kernels::reference
