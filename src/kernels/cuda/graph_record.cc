// StepGraphs (graph_record.h): capture and replay of decode steps as CUDA graphs.
#include "kernels/cuda/graph_record.h"

#include "kernels/cuda/cuda_check.h"

namespace petrel::kernels::cuda {

void StepGraphs::Begin(bool graph, int64_t key) {
  capturable_ = graph;
  key_ = key;
  tape_.clear();
  replay_ = nullptr;
  if (!graph) {
    mode_ = Mode::kEager;
    return;
  }
  auto it = graphs_.find(key);
  if (it != graphs_.end()) {
    mode_ = Mode::kReplay;
    replay_ = &it->second;
    replay_pos_ = 0;
  } else {
    mode_ = Mode::kRecord;
  }
}

void StepGraphs::NotCapturable(cudaStream_t stream) {
  if (mode_ == Mode::kReplay) Diverge(stream);
  capturable_ = false;
}

void StepGraphs::Diverge(cudaStream_t stream) {
  tape_.assign(replay_->ops.begin(), replay_->ops.begin() + replay_pos_);
  for (const RecordedOp& op : tape_) op.launch(stream);
  mode_ = Mode::kRecord;
  replay_ = nullptr;
}

void StepGraphs::Finish(cudaStream_t stream, StepTimer& timer) {
  if (mode_ == Mode::kReplay) {
    if (replay_pos_ == replay_->ops.size()) {
      timer.BeforeLaunch(stream);
      CUDA_CHECK(cudaGraphLaunch(replay_->exec, stream));
      timer.AfterLaunch(stream);
      mode_ = Mode::kEager;
      replay_ = nullptr;
      return;
    }
    Diverge(stream);
  }
  if (mode_ == Mode::kRecord && capturable_ && !tape_.empty()) Capture(stream);
  mode_ = Mode::kEager;
  tape_.clear();
}

void StepGraphs::Capture(cudaStream_t stream) {
  if (graphs_.size() >= kMaxGraphs && !graphs_.count(key_)) Clear();
  cudaGraph_t graph;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (const RecordedOp& op : tape_) op.launch(stream);
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  DecodeGraph& g = graphs_[key_];
  if (g.exec) CUDA_CHECK(cudaGraphExecDestroy(g.exec));
  CUDA_CHECK(cudaGraphInstantiate(&g.exec, graph, 0));
  CUDA_CHECK(cudaGraphDestroy(graph));
  g.ops = std::move(tape_);
  tape_.clear();
}

void StepGraphs::Clear() {
  for (auto& [k, g] : graphs_)
    if (g.exec) cudaGraphExecDestroy(g.exec);
  graphs_.clear();
}

}  // namespace petrel::kernels::cuda
