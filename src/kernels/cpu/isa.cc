#include "kernels/cpu/isa.h"

#include <cstdlib>
#include <cstring>

namespace petrel::kernels::cpu {

Isa DetectIsa() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni")) {
    return Isa::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c")) {
    return Isa::kAvx2;
  }
#endif
  return Isa::kScalar;
}

Isa SelectedIsa() {
  Isa best = DetectIsa();
  const char* cap = std::getenv("PETREL_ISA");
  if (!cap) return best;
  Isa want = best;
  if (!std::strcmp(cap, "scalar")) want = Isa::kScalar;
  if (!std::strcmp(cap, "avx2")) want = Isa::kAvx2;
  if (!std::strcmp(cap, "avx512")) want = Isa::kAvx512;
  return want < best ? want : best;
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

}  // namespace petrel::kernels::cpu
