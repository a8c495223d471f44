#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/vocab_scan.h"
#include "kernels/backend.h"

namespace petrel::runtime {

void SamplerState::Init(const SamplingParams& p, std::span<const int32_t> prompt, int64_t vocab,
                        uint64_t fallback_seed) {
  rng.seed(p.seed ? *p.seed : fallback_seed);
  device_seed = p.seed ? *p.seed : fallback_seed;
  output_counts.clear();
  seen.clear();
  if (p.repetition_penalty != 1.0f) {
    seen.assign(vocab, 0);
    for (int32_t t : prompt)
      if (t >= 0 && t < vocab) seen[t] = 1;
  }
}

void SamplerState::Observe(int32_t token) {
  output_counts[token]++;
  if (!seen.empty() && token >= 0 && token < (int32_t)seen.size()) seen[token] = 1;
}

Status ValidateSampling(const SamplingParams& p, int64_t vocab) {
  if (!(p.temperature >= 0) || p.temperature > 100) return InvalidArgument("temperature must be in [0, 100]");
  if (!(p.top_p > 0) || p.top_p > 1) return InvalidArgument("top_p must be in (0, 1]");
  if (p.top_k < -1) return InvalidArgument("top_k must be -1, 0 or positive");
  if (!(p.min_p >= 0) || p.min_p > 1) return InvalidArgument("min_p must be in [0, 1]");
  if (!(p.presence_penalty >= -2) || p.presence_penalty > 2) return InvalidArgument("presence_penalty must be in [-2, 2]");
  if (!(p.frequency_penalty >= -2) || p.frequency_penalty > 2) return InvalidArgument("frequency_penalty must be in [-2, 2]");
  if (!(p.repetition_penalty > 0) || p.repetition_penalty > 100) return InvalidArgument("repetition_penalty must be in (0, 100]");
  for (const auto& [tok, bias] : p.logit_bias) {
    if (tok < 0 || tok >= vocab) return InvalidArgument("logit_bias: token id ", tok, " is out of range [0, ", vocab, ")");
    if (!(bias >= -100) || bias > 100) return InvalidArgument("logit_bias values must be in [-100, 100]");
  }
  return OkStatus();
}

bool NeedsHostSampling(const SamplingParams& p, int top_logprobs) {
  return !p.logit_bias.empty() || p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f ||
         p.frequency_penalty != 0.0f || top_logprobs > kernels::Backend::kMaxDeviceTopLogprobs;
}

namespace {

using namespace petrel::vocab_scan;

// log-softmax of the raw logits for the chosen token and the top k.
void FillLogprobs(std::span<const float> raw, int top_k, TokenOutput& out) {
  const float mx = MaxValue(raw.data(), (int64_t)raw.size());
  std::vector<float> w(raw.size());
  std::vector<double> block_sum((raw.size() + kScanBlock - 1) / kScanBlock);
  const double s = ExpWeights(raw.data(), (int64_t)raw.size(), mx, 1.0f, w.data(), block_sum.data());
  const float lse = mx + (float)std::log(s);
  out.logprob = raw[out.token] - lse;
  out.top.clear();
  if (top_k <= 0) return;
  for (int32_t i : TopK(raw, top_k)) out.top.push_back({i, raw[i] - lse});
}

}  // namespace

void Sample(std::span<float> logits, const SamplingParams& p, SamplerState& state, int top_logprobs,
            TokenOutput& out) {
  const int64_t vocab = (int64_t)logits.size();
  std::vector<float> raw;
  if (top_logprobs >= 0) raw.assign(logits.begin(), logits.end());

  for (const auto& [tok, bias] : p.logit_bias) logits[tok] += bias;
  if (p.repetition_penalty != 1.0f && !state.seen.empty()) {
    const float r = p.repetition_penalty;
    for (int64_t i = 0; i < vocab; ++i)
      if (state.seen[i]) logits[i] = logits[i] > 0 ? logits[i] / r : logits[i] * r;
  }
  if (p.presence_penalty != 0 || p.frequency_penalty != 0) {
    for (const auto& [tok, n] : state.output_counts)
      logits[tok] -= p.frequency_penalty * (float)n + p.presence_penalty;
  }

  int32_t token;
  if (p.temperature == 0.0f) {
    token = (int32_t)ArgMaxFirst(logits);
  } else {
    const float inv_t = 1.0f / p.temperature;
    const int64_t k = (p.top_k > 0 && p.top_k < vocab) ? p.top_k : vocab;
    const float mx = MaxValue(logits.data(), vocab);
    // Weights exp((logit - max) / T) of the whole vocabulary, when its normaliser is needed.
    std::vector<float> w;
    std::vector<double> block_sum;
    double total = 0;
    auto all_weights = [&] {
      w.resize(vocab);
      block_sum.resize((vocab + kScanBlock - 1) / kScanBlock);
      total = ExpWeights(logits.data(), vocab, mx, inv_t, w.data(), block_sum.data());
    };
    if (k == vocab && p.top_p >= 1.0f && p.min_p <= 0) {
      // Plain temperature sampling: no truncation, no sort.
      all_weights();
      std::uniform_real_distribution<double> u(0.0, total);
      token = (int32_t)DrawIndex(w.data(), vocab, block_sum.data(), u(state.rng));
      out.token = token;
      if (top_logprobs >= 0) FillLogprobs(raw, top_logprobs, out);
      state.Observe(token);
      return;
    }
    // Candidates by logit: the top k, or without top-k a 1024 prefix that usually holds the top-p
    // mass (with the full-vocab normaliser), else everything.
    std::vector<int32_t> idx = TopK(logits, k < vocab ? k : std::min<int64_t>(vocab, 1024));
    auto weight = [&](int32_t i) -> double {
      return w.empty() ? ExpNonPositive((logits[i] - mx) * inv_t) : w[i];
    };
    double norm = 0;
    if ((int64_t)idx.size() == k) {
      for (int32_t i : idx) norm += weight(i);
    } else {  // k == vocab
      all_weights();
      norm = total;
      double prefix = 0;
      for (int32_t i : idx) prefix += weight(i);
      const bool top_p_fits = p.top_p < 1.0f && prefix / norm >= p.top_p;
      const bool min_p_fits = p.top_p >= 1.0f && p.min_p > 0 &&
                              weight(idx.back()) < p.min_p * weight(idx[0]);
      if (!top_p_fits && !min_p_fits) idx = TopK(logits, vocab);
    }
    int n = (int)idx.size();
    std::vector<double> probs(n);
    for (int i = 0; i < n; ++i) probs[i] = weight(idx[i]);
    if (p.top_p < 1.0f) {
      double cum = 0;
      int keep = n;
      for (int i = 0; i < n; ++i) {
        cum += probs[i] / norm;
        if (cum >= p.top_p) {
          keep = i + 1;
          break;
        }
      }
      n = keep;
    }
    if (p.min_p > 0) {
      const double thresh = p.min_p * probs[0];
      int keep = 1;
      while (keep < n && probs[keep] >= thresh) ++keep;
      n = keep;
    }
    double zz = 0;
    for (int i = 0; i < n; ++i) zz += probs[i];
    std::uniform_real_distribution<double> u(0.0, zz);
    double r = u(state.rng), acc = 0;
    token = idx[n - 1];
    for (int i = 0; i < n; ++i) {
      acc += probs[i];
      if (r < acc) {
        token = idx[i];
        break;
      }
    }
  }
  out.token = token;
  if (top_logprobs >= 0) FillLogprobs(raw, top_logprobs, out);
  state.Observe(token);
}

}  // namespace petrel::runtime
