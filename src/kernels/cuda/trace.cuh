// Kernel timeline trace (a measuring aid, compiled in only with -DPETREL_CUDA_TRACE=ON): the
// instrumented kernels (the GEMVs and the decode attention) record, per block, the global timer
// at entry and exit and the SM clock after PdlWait() and at marked phase ends, so that a
// replayed decode step's critical path can be read kernel by kernel and phase by phase
// (bench/cuda/trace_summary.py). PETREL_CUDA_TRACE_STEP=n traces the n-th BeginBatch's step
// (trace_recorder.h). Without the option every macro below is empty.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace petrel::kernels::cuda {

constexpr int kTraceMarks = 10;
struct TraceRec {
  uint32_t tag;    // what ran: a kernel kind and its shape
  uint32_t where;  // block index (low 24 bits) and SM (high 8 bits)
  uint64_t t0, t1, t2;  // %globaltimer (ns) at entry and exit; t1: clock64 after PdlWait
  uint64_t c0, c2;      // clock64 (SM cycles) at entry and exit: the SM clock over the block
  uint64_t mark[kTraceMarks];  // phase ends inside the kernel, clock64 (0: not reached); the
                               // global timer is too slow to read (~0.4 us) between phases
};

// Sets (or clears, with nullptr) the trace buffer of each instrumented translation unit; false
// when the trace is not compiled in.
bool SetGemvTrace(TraceRec* buf, unsigned* count, unsigned capacity);
bool SetDecodeAttentionTrace(TraceRec* buf, unsigned* count, unsigned capacity);

#if defined(PETREL_CUDA_TRACE) && defined(__CUDACC__)
namespace trace_detail {
// One copy per translation unit (internal linkage), set by that unit's Set*Trace().
static __device__ TraceRec* g_buf = nullptr;
static __device__ unsigned* g_count = nullptr;
static __device__ unsigned g_capacity = 0;

__device__ __forceinline__ uint64_t Now() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ void Record(uint32_t tag, uint64_t t0, uint64_t t1, uint64_t c0,
                                       const uint64_t (&marks)[kTraceMarks]) {
  const uint64_t c2 = clock64();
  if (g_buf == nullptr || threadIdx.x != 0) return;
  const unsigned i = atomicAdd(g_count, 1u);
  if (i >= g_capacity) return;
  unsigned sm;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
  const uint32_t b = blockIdx.x + blockIdx.y * gridDim.x + blockIdx.z * gridDim.x * gridDim.y;
  TraceRec r{tag, (b & 0xFFFFFFu) | (sm << 24), t0, t1, Now(), c0, c2, {}};
  for (int k = 0; k < kTraceMarks; ++k) r.mark[k] = marks[k];
  g_buf[i] = r;
}

inline void SetThisUnit(TraceRec* buf, unsigned* count, unsigned capacity) {
  cudaMemcpyToSymbol(g_buf, &buf, sizeof(buf));
  cudaMemcpyToSymbol(g_count, &count, sizeof(count));
  cudaMemcpyToSymbol(g_capacity, &capacity, sizeof(capacity));
}
}  // namespace trace_detail
#define PETREL_TRACE_ENTRY()                               \
  const uint64_t trace_c0_ = clock64();                    \
  const uint64_t trace_t0_ = trace_detail::Now();          \
  uint64_t trace_t1_ = trace_c0_;                          \
  uint64_t trace_m_[kTraceMarks] = {}
#define PETREL_TRACE_WAITED() trace_t1_ = clock64()
#define PETREL_TRACE_MARK(k) trace_m_[k] = clock64()
#define PETREL_TRACE_EXIT(tag) trace_detail::Record((tag), trace_t0_, trace_t1_, trace_c0_, trace_m_)
#define PETREL_TRACE_SETTER(Name)                                   \
  bool Name(TraceRec* buf, unsigned* count, unsigned capacity) {    \
    trace_detail::SetThisUnit(buf, count, capacity);                \
    return true;                                                    \
  }
#else
#define PETREL_TRACE_ENTRY() do {} while (0)
#define PETREL_TRACE_WAITED() do {} while (0)
#define PETREL_TRACE_MARK(k) do {} while (0)
#define PETREL_TRACE_EXIT(tag) do {} while (0)
#define PETREL_TRACE_SETTER(Name) \
  bool Name(TraceRec*, unsigned*, unsigned) { return false; }
#endif

}  // namespace petrel::kernels::cuda
