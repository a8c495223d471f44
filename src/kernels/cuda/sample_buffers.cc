// SampleBuffers (sample_buffers.h).
#include "kernels/cuda/sample_buffers.h"

#include <algorithm>

namespace petrel::kernels::cuda {

void SampleBuffers::Reserve(int64_t rows) {
  if (rows <= cap_) return;
  cap_ = std::max<int64_t>(NextPow2(rows), 256);
  const size_t bytes = cap_ * (sizeof(SampleRowParams) + 8 + 8 * kTop);
  for (Set& s : sets_) {
    s.dev.Reserve(bytes);
    s.host.Reserve(bytes);
  }
}

bool SampleBuffers::FillParams(int set, std::span<const SampleSpec> specs) {
  SampleRowParams* hp = HostParams(set);
  bool any_top = false;
  for (size_t r = 0; r < specs.size(); ++r) {
    const SampleSpec& s = specs[r];
    PETREL_CHECK(s.top_logprobs <= kTop) << "SampleRows: top_logprobs " << s.top_logprobs;
    hp[r] = SampleRowParams{s.temperature, s.top_k, s.top_p, s.min_p, s.seed, s.step,
                            s.top_logprobs, s.skip ? 1 : 0};
    any_top = any_top || (!s.skip && s.top_logprobs > 0);
  }
  return any_top;
}

SampleOutputs SampleBuffers::Outputs(int set) const {
  void* d = sets_[set].dev.get();
  SampleOutputs o;
  o.ids = At<int32_t>(d, 1);
  o.logprobs = At<float>(d, 2);
  o.top_ids = At<int32_t>(d, 3);
  o.top_logprobs = At<float>(d, 4);
  return o;
}

void SampleBuffers::CopyBack(int set, int64_t rows, bool any_top, cudaStream_t stream) const {
  void* h = sets_[set].host.get();
  const SampleOutputs o = Outputs(set);
  // ids and logprobs are contiguous: one copy of both sections.
  CUDA_CHECK(cudaMemcpyAsync(At<int32_t>(h, 1), o.ids, cap_ * 8, cudaMemcpyDeviceToHost, stream));
  if (!any_top) return;
  CUDA_CHECK(cudaMemcpyAsync(At<int32_t>(h, 3), o.top_ids, rows * kTop * 4, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaMemcpyAsync(At<float>(h, 4), o.top_logprobs, rows * kTop * 4, cudaMemcpyDeviceToHost,
                             stream));
}

void SampleBuffers::Read(int set, int64_t V, std::span<const SampleSpec> specs,
                         std::span<SampleResult> out) const {
  void* h = sets_[set].host.get();
  const int32_t* ids = At<int32_t>(h, 1);
  const float* lp = At<float>(h, 2);
  const int32_t* top_ids = At<int32_t>(h, 3);
  const float* top_lp = At<float>(h, 4);
  for (size_t r = 0; r < specs.size(); ++r) {
    const SampleSpec& s = specs[r];
    SampleResult& res = out[r];
    res.top.clear();
    if (s.skip) continue;
    res.token = ids[r];
    res.logprob = s.top_logprobs >= 0 ? lp[r] : 0.0f;
    const int n = (int)std::min<int64_t>(std::max(s.top_logprobs, 0), V);
    for (int j = 0; j < n; ++j) res.top.emplace_back(top_ids[r * kTop + j], top_lp[r * kTop + j]);
  }
}

}  // namespace petrel::kernels::cuda
