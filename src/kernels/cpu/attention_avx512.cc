// The attention template compiled with AVX-512 flags (see cmake/CpuVariants.cmake).
#include "kernels/cpu/attention_impl.h"

namespace petrel::kernels::cpu {
void AttentionAvx512(const AttentionArgs& a, ThreadPool& pool) { impl::Dispatch(a, pool); }
}  // namespace petrel::kernels::cpu
