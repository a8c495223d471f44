// Shared by the CPU kernel tests: Backend::MatMuls against the same products one by one.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "kernels/backend.h"

namespace petrel::kernels {

// For every T in Ts: be.MatMuls over `weights` (all [N_j, K]; `bias` on job `bias_job`) must give
// exactly, bit for bit, what be.MatMul gives for each product alone.
inline void ExpectMatMulsSameAsOneByOne(Backend& be, const std::vector<TensorView>& weights,
                                        TensorView bias, size_t bias_job,
                                        std::span<const int64_t> Ts, uint32_t seed) {
  const int64_t K = weights.at(0).dim(1);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t T : Ts) {
    Tensor xt(DType::kF32, {T, K});
    for (int64_t i = 0; i < T * K; ++i) xt.As<float>()[i] = u(rng);
    std::vector<Tensor> grouped, single;
    std::vector<MatMulJob> jobs;
    for (size_t j = 0; j < weights.size(); ++j) {
      const int64_t N = weights[j].dim(0);
      grouped.emplace_back(DType::kF32, Shape{T, N});
      single.emplace_back(DType::kF32, Shape{T, N});
      const TensorView b = j == bias_job ? bias : TensorView{};
      jobs.push_back({grouped.back().view(), weights[j], b});
      be.MatMul(single.back(), xt, weights[j], b);
    }
    be.MatMuls(xt, jobs);
    for (size_t j = 0; j < weights.size(); ++j) {
      const int64_t n = T * weights[j].dim(0);
      const std::vector<float> a(grouped[j].As<float>(), grouped[j].As<float>() + n);
      const std::vector<float> b(single[j].As<float>(), single[j].As<float>() + n);
      EXPECT_EQ(a, b) << "T=" << T << " job " << j << " N=" << weights[j].dim(0);
    }
  }
}

}  // namespace petrel::kernels
