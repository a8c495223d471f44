// A Backend decorator that times every op (wall clock around the call) and accumulates the time
// per op name (matmuls per weight shape), for `petrel bench --op-profile`: where a decode step of
// the CPU backend goes, including the time between ops (the model's own host code). Meaningful
// for backends whose ops finish before they return (the CPU); a device backend's ops only enqueue.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace petrel::kernels {

struct OpTime {
  std::string op;  // "MatMul 1024x3072 BF16", "MatMuls 3072+3072 K1024 Q4_0", "Attention", ...
  double seconds = 0;
  int64_t calls = 0;
};

class OpProfile {
 public:
  virtual ~OpProfile() = default;
  // Ops by total time (largest first), plus "(between ops)": wall time since the last Reset()
  // not spent inside any op.
  virtual std::vector<OpTime> Snapshot() const = 0;
  virtual void Reset() = 0;
};

// Wraps `inner`; `profile` is set to the decorator's accumulator (owned by the returned backend).
std::unique_ptr<Backend> WithOpProfile(std::unique_ptr<Backend> inner, OpProfile** profile);

}  // namespace petrel::kernels
