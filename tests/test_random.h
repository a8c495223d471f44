// Random test data shared by the unit tests: n normally distributed floats (mean 0, standard
// deviation `scale`) from a seeded std::mt19937, the same values for the same seed on every run.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace petrel::test {

inline std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace petrel::test
