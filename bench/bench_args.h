// Comma-separated list arguments of the micro-benchmarks ("--T 1,4,64", "--dtypes bf16,q4_0").
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace petrel::bench {

inline std::vector<std::string> SplitCommas(const std::string& list) {
  std::vector<std::string> out;
  for (size_t b = 0; b < list.size();) {
    size_t e = list.find(',', b);
    if (e == std::string::npos) e = list.size();
    out.push_back(list.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

inline std::vector<int64_t> ParseInts(const std::string& list) {
  std::vector<int64_t> out;
  for (const std::string& s : SplitCommas(list)) out.push_back(std::strtoll(s.c_str(), nullptr, 10));
  return out;
}

}  // namespace petrel::bench
