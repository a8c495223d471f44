// Vectorised elementwise CPU kernels that the compiler does not vectorise on its own (they call
// exp). One implementation per ISA; the CPU backend picks one at construction.
#pragma once

#include <cstdint>

namespace petrel::kernels::cpu {

// out[i] = silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i] for i < n (out may alias gate).
void SiluMulAvx512(const float* gate, const float* up, float* out, int64_t n);

}  // namespace petrel::kernels::cpu
