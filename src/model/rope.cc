#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace petrel::model {

namespace {

// YaRN helpers (Peng et al. 2023, "YaRN: Efficient Context Window Extension"), as in transformers.
double YarnMscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}
double CorrectionDim(double num_rotations, double dim, double base, double max_pos) {
  return dim * std::log(max_pos / (num_rotations * 2 * std::numbers::pi)) / (2 * std::log(base));
}

}  // namespace

kernels::RopeTable BuildRopeTable(const formats::ModelConfig& c) {
  using formats::RopeType;
  const int dim = (int)c.head_dim;
  const int half = dim / 2;
  const auto& r = c.rope;
  kernels::RopeTable t;
  t.inv_freq.resize(half);
  // Base frequencies in f32 as torch computes them: 1 / base ** (arange(0, dim, 2) / dim).
  std::vector<float> base_freq(half);
  for (int i = 0; i < half; ++i) {
    const float expo = (float)(2 * i) / (float)dim;
    base_freq[i] = 1.0f / std::pow((float)r.theta, expo);
  }
  switch (r.type) {
    case RopeType::kDefault:
      t.inv_freq = base_freq;
      break;
    case RopeType::kLinear:
      for (int i = 0; i < half; ++i) t.inv_freq[i] = base_freq[i] / (float)r.factor;
      break;
    case RopeType::kLlama3: {
      // Llama 3.1: low frequencies divided by factor, high kept, a smooth ramp between (f32 math,
      // as the torch code does it).
      const float factor = (float)r.factor;
      const float lf = (float)r.low_freq_factor, hf = (float)r.high_freq_factor;
      const float old_ctx = (float)r.original_max_position;
      const float low_wavelen = old_ctx / lf, high_wavelen = old_ctx / hf;
      for (int i = 0; i < half; ++i) {
        const float f = base_freq[i];
        const float wavelen = 2.0f * (float)std::numbers::pi / f;
        float g = wavelen > low_wavelen ? f / factor : f;
        const float smooth = (old_ctx / wavelen - lf) / (hf - lf);
        const float smoothed = (1.0f - smooth) * g / factor + smooth * g;
        const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        t.inv_freq[i] = medium ? smoothed : g;
      }
      break;
    }
    case RopeType::kYarn: {
      const double factor = r.factor;
      double attn = r.attention_factor;
      if (attn <= 0) {
        attn = (r.mscale > 0 && r.mscale_all_dim > 0)
                   ? YarnMscale(factor, r.mscale) / YarnMscale(factor, r.mscale_all_dim)
                   : YarnMscale(factor, 1.0);
      }
      t.attention_scaling = (float)attn;
      const double max_pos = (double)r.original_max_position;
      double low = CorrectionDim(r.beta_fast, dim, r.theta, max_pos);
      double high = CorrectionDim(r.beta_slow, dim, r.theta, max_pos);
      if (r.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, (double)dim - 1);
      if (low == high) high += 0.001;
      for (int i = 0; i < half; ++i) {
        const float pos_freq = 1.0f / base_freq[i];  // base ** (2i / dim)
        const float extrap = 1.0f / pos_freq;
        const float interp = 1.0f / ((float)factor * pos_freq);
        const float ramp = std::clamp((float)((i - low) / (high - low)), 0.0f, 1.0f);
        const float extrap_factor = 1.0f - ramp;
        t.inv_freq[i] = interp * (1.0f - extrap_factor) + extrap * extrap_factor;
      }
      break;
    }
  }
  return t;
}

}  // namespace petrel::model
