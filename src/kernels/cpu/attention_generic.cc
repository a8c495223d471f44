#include "kernels/cpu/attention_impl.h"

namespace petrel::kernels::cpu {
void AttentionGeneric(const AttentionArgs& a, ThreadPool& pool) { impl::Dispatch(a, pool); }
}  // namespace petrel::kernels::cpu
