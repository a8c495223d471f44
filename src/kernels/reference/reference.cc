#include "kernels/reference/reference.h"

#include <algorithm>
#include <cmath>

namespace petrel::kernels::reference {

static float WeightAt(const void* w, DType dt, int64_t i) {
  switch (dt) {
    case DType::kF32: return static_cast<const float*>(w)[i];
    case DType::kBF16: return BF16ToF32(static_cast<const uint16_t*>(w)[i]);
    case DType::kF16: return F16ToF32(static_cast<const uint16_t*>(w)[i]);
    default: return NAN;
  }
}

void MatMul(const float* x, const void* w, DType w_dtype, const float* bias, float* out,
            int64_t T, int64_t K, int64_t N) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double s = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += (double)x[t * K + k] * WeightAt(w, w_dtype, n * K + k);
      out[t * N + n] = (float)s;
    }
}

void MatMulBf16Activations(const float* x, const void* w, DType w_dtype, const float* bias,
                           float* out, int64_t T, int64_t K, int64_t N) {
  std::vector<float> xr(x, x + T * K);
  for (float& v : xr) v = BF16ToF32(F32ToBF16(v));
  MatMul(xr.data(), w, w_dtype, bias, out, T, K, N);
}

void RmsNorm(const float* x, const float* w, float* out, int64_t rows, int64_t d, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += (double)x[r * d + i] * x[r * d + i];
    const double inv = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t i = 0; i < d; ++i) out[r * d + i] = (float)(w[i] * (x[r * d + i] * inv));
  }
}

void Rope(float* x, int64_t T, int n_heads, int head_dim, const int32_t* positions,
          const std::vector<float>& inv_freq, float attention_scaling) {
  const int half = head_dim / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const double ang = (double)((float)positions[t] * inv_freq[i]);
        const double c = std::cos(ang) * attention_scaling, s = std::sin(ang) * attention_scaling;
        const double a = v[i], b = v[i + half];
        v[i] = (float)(a * c - b * s);
        v[i + half] = (float)(b * c + a * s);
      }
    }
}

void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = (float)(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void Attention(const float* q, const float* k, const float* v, float* out, int n_q, int ctx,
               int n_heads, int n_kv_heads, int head_dim, float scale, int sliding_window) {
  const int group = n_heads / n_kv_heads;
  std::vector<double> s(ctx);
  for (int i = 0; i < n_q; ++i) {
    const int pos = ctx - n_q + i;
    const int start = sliding_window > 0 ? std::max(0, pos - sliding_window + 1) : 0;
    for (int h = 0; h < n_heads; ++h) {
      const int kvh = h / group;
      const float* qi = q + ((int64_t)i * n_heads + h) * head_dim;
      double mx = -INFINITY;
      for (int j = start; j <= pos; ++j) {
        double d = 0;
        for (int c = 0; c < head_dim; ++c) d += (double)qi[c] * k[((int64_t)j * n_kv_heads + kvh) * head_dim + c];
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int j = start; j <= pos; ++j) sum += (s[j] = std::exp(s[j] - mx));
      float* o = out + ((int64_t)i * n_heads + h) * head_dim;
      for (int c = 0; c < head_dim; ++c) {
        double acc = 0;
        for (int j = start; j <= pos; ++j) acc += s[j] / sum * v[((int64_t)j * n_kv_heads + kvh) * head_dim + c];
        o[c] = (float)acc;
      }
    }
  }
}

}  // namespace petrel::kernels::reference
