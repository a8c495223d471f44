// PETREL_CUDA_TRACE_STEP=n (with a -DPETREL_CUDA_TRACE=ON build): the backend calls OnStep() at
// every BeginBatch; the n-th step runs with the kernel trace on (trace.cuh) and, at the next
// BeginBatch, its records are written as CSV to PETREL_CUDA_TRACE_FILE (default
// petrel_trace.csv): tag, block, sm, t0, t1, t2, c0, c2, m0.. (t0 and t2 global timer ns, the
// rest SM clock cycles). A measuring aid; nothing happens unless the variable is set.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/trace.cuh"

namespace petrel::kernels::cuda {

class TraceRecorder {
 public:
  TraceRecorder() {
    if (const char* v = std::getenv("PETREL_CUDA_TRACE_STEP")) step_ = std::atoi(v);
    if (const char* f = std::getenv("PETREL_CUDA_TRACE_FILE")) file_ = f;
  }
  TraceRecorder(const TraceRecorder&) = delete;
  TraceRecorder& operator=(const TraceRecorder&) = delete;
  ~TraceRecorder() {
    if (buf_) cudaFree(buf_);
  }

  // Called at BeginBatch after the previous step finished on `stream`.
  void OnStep(cudaStream_t stream) {
    if (step_ <= 0) return;
    ++seen_;
    if (seen_ == step_) {
      if (!Set(nullptr, nullptr, 0)) {
        std::fprintf(stderr, "PETREL_CUDA_TRACE_STEP: this build has no kernel trace "
                             "(configure with -DPETREL_CUDA_TRACE=ON)\n");
        step_ = 0;
        return;
      }
      CUDA_CHECK(cudaMalloc(&buf_, sizeof(TraceRec) * kCapacity + sizeof(unsigned)));
      count_ = reinterpret_cast<unsigned*>(buf_ + kCapacity);
      CUDA_CHECK(cudaMemset(count_, 0, sizeof(unsigned)));
      Set(buf_, count_, kCapacity);
    } else if (seen_ == step_ + 1) {
      CUDA_CHECK(cudaStreamSynchronize(stream));
      Set(nullptr, nullptr, 0);
      unsigned n = 0;
      CUDA_CHECK(cudaMemcpy(&n, count_, sizeof(n), cudaMemcpyDeviceToHost));
      n = n < kCapacity ? n : kCapacity;
      std::vector<TraceRec> recs(n);
      CUDA_CHECK(cudaMemcpy(recs.data(), buf_, sizeof(TraceRec) * n, cudaMemcpyDeviceToHost));
      if (FILE* f = std::fopen(file_.c_str(), "w")) {
        std::fprintf(f, "tag,block,sm,t0,t1,t2,c0,c2");
        for (int k = 0; k < kTraceMarks; ++k) std::fprintf(f, ",m%d", k);
        std::fprintf(f, "\n");
        for (const TraceRec& r : recs) {
          std::fprintf(f, "%u,%u,%u,%llu,%llu,%llu", r.tag, r.where & 0xFFFFFFu, r.where >> 24,
                       (unsigned long long)r.t0, (unsigned long long)r.t1,
                       (unsigned long long)r.t2);
          std::fprintf(f, ",%llu,%llu", (unsigned long long)r.c0, (unsigned long long)r.c2);
          for (int k = 0; k < kTraceMarks; ++k)
            std::fprintf(f, ",%llu", (unsigned long long)r.mark[k]);
          std::fprintf(f, "\n");
        }
        std::fclose(f);
        std::fprintf(stderr, "trace: %u records of step %d in %s\n", n, step_, file_.c_str());
      }
    }
  }

 private:
  static constexpr unsigned kCapacity = 1u << 20;
  static bool Set(TraceRec* b, unsigned* c, unsigned cap) {
    const bool on = SetGemvTrace(b, c, cap) && SetDecodeAttentionTrace(b, c, cap);
    CUDA_CHECK(cudaDeviceSynchronize());
    return on;
  }
  int step_ = 0, seen_ = 0;
  std::string file_ = "petrel_trace.csv";
  TraceRec* buf_ = nullptr;
  unsigned* count_ = nullptr;
};

}  // namespace petrel::kernels::cuda
