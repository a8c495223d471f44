// PETREL_CUDA_STEP_TIMING=1: where a replayed decode step's time goes, printed at exit (means
// over the replayed steps): host time from BeginBatch to the graph launch (the model's op calls,
// matched against the recorded ones), the graph's GPU time (events around it) and the period
// from one graph launch to the next. Internal to the CUDA backend; off by default (no events).
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace petrel::kernels::cuda {

class StepTimer {
 public:
  StepTimer() {
    const char* v = std::getenv("PETREL_CUDA_STEP_TIMING");
    on_ = v && v[0] == '1';
    if (!on_) return;
    cudaEventCreate(&ev_[0]);
    cudaEventCreate(&ev_[1]);
  }
  ~StepTimer() {
    if (!on_) return;
    Collect();
    if (n_ > 0)
      std::fprintf(stderr,
                   "step timing (%d replayed steps): host ops %.1f us, graph on the GPU %.1f us, "
                   "launch-to-launch %.1f us\n",
                   n_, host_us_ / n_, gpu_us_ / n_, n_period_ ? period_us_ / n_period_ : 0.0);
    cudaEventDestroy(ev_[0]);
    cudaEventDestroy(ev_[1]);
  }
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;

  void BeginStep() {
    if (on_) begin_ = Clock::now();
  }
  void BeforeLaunch(cudaStream_t s) {
    if (!on_) return;
    Collect();
    const auto now = Clock::now();
    host_us_ += Us(begin_, now);
    if (launched_) period_us_ += Us(last_launch_, now), ++n_period_;
    last_launch_ = now;
    launched_ = true;
    cudaEventRecord(ev_[0], s);
  }
  void AfterLaunch(cudaStream_t s) {
    if (!on_) return;
    cudaEventRecord(ev_[1], s);
    pending_ = true;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double Us(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
  }
  void Collect() {
    if (!pending_) return;
    float ms = 0.0f;
    cudaEventSynchronize(ev_[1]);
    cudaEventElapsedTime(&ms, ev_[0], ev_[1]);
    gpu_us_ += ms * 1e3;
    ++n_;
    pending_ = false;
  }

  bool on_ = false, pending_ = false, launched_ = false;
  cudaEvent_t ev_[2] = {nullptr, nullptr};
  Clock::time_point begin_, last_launch_;
  double host_us_ = 0, gpu_us_ = 0, period_us_ = 0;
  int n_ = 0, n_period_ = 0;
};

}  // namespace petrel::kernels::cuda
