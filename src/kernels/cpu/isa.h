// CPU ISA levels and the choice of one at run time (CPUID via __builtin_cpu_supports). The env
// variable PETREL_ISA=scalar|avx2|avx512 caps the level (tests use it to cover every variant).
#pragma once

namespace petrel::kernels::cpu {

enum class Isa { kScalar, kAvx2, kAvx512 };

// The best level this CPU supports (AVX-512 needs F/BW/VL/DQ + BF16 + VNNI; AVX2 needs FMA + F16C).
Isa DetectIsa();
// DetectIsa() capped by PETREL_ISA.
Isa SelectedIsa();
const char* IsaName(Isa isa);

}  // namespace petrel::kernels::cpu
