// Device memory of the CUDA backend (cuda_backend.cc): the size-bucketed pool of activation
// blocks, owned device and pinned host buffers, the paged KV cache, and the device copy of a step's
// index arrays. Internal to the backend; not a public header.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elem.h"

namespace petrel::kernels::cuda {

inline Elem ElemOf(DType t) {
  switch (t) {
    case DType::kF32: return Elem::kF32;
    case DType::kF16: return Elem::kF16;
    case DType::kBF16: return Elem::kBF16;
    default:  // integer and quantized block types: no float kernels
      break;
  }
  PETREL_CHECK(false) << "CUDA backend: no float kernels for dtype " << DTypeName(t);
  return Elem::kF32;
}

inline size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }
inline int64_t NextPow2(int64_t n) { return (int64_t)std::bit_ceil((uint64_t)std::max<int64_t>(n, 1)); }

// Size-bucketed cache of device blocks (exact rounded sizes, LIFO reuse). Single-threaded like the
// backend. All work runs on one stream, so a block freed by the host and handed out again is only
// touched by kernels enqueued after the ones that used it before.
class DevicePool {
 public:
  ~DevicePool() {
    for (auto& [bytes, list] : free_)
      for (void* p : list) cudaFree(p);
  }
  void* Get(size_t bytes) {
    bytes = RoundUp(std::max<size_t>(bytes, 1), 256);
    auto& list = free_[bytes];
    void* p;
    if (!list.empty()) {
      p = list.back();
      list.pop_back();
    } else if (cudaMalloc(&p, bytes) != cudaSuccess) {
      // Out of memory (the KV cache takes most of the device): give the cached blocks of other
      // sizes back to the driver and try once more.
      cudaGetLastError();
      ReleaseCached();
      CUDA_CHECK(cudaMalloc(&p, bytes));
    }
    size_of_[p] = bytes;
    return p;
  }
  void Put(void* p) {
    auto it = size_of_.find(p);
    PETREL_CHECK(it != size_of_.end()) << "DevicePool: unknown block";
    free_[it->second].push_back(p);
    size_of_.erase(it);
  }
  static void Release(void* ctx, void* p) { static_cast<DevicePool*>(ctx)->Put(p); }
  void ReleaseCached() {
    CUDA_CHECK(cudaDeviceSynchronize());
    for (auto& [bytes, list] : free_)
      for (void* p : list) CUDA_CHECK(cudaFree(p));
    free_.clear();
  }

 private:
  std::map<size_t, std::vector<void*>> free_;
  std::unordered_map<void*, size_t> size_of_;
};

// An owned cudaMalloc block (weights, caches, scratch). Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    CUDA_CHECK(cudaMalloc(&p_, std::max<size_t>(bytes, 1)));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr, o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  void* get() const { return p_; }
  size_t bytes() const { return bytes_; }
  // Grows to at least `bytes` (contents are lost). Synchronises the device when it reallocates.
  void Reserve(size_t bytes) {
    if (bytes <= bytes_) return;
    if (p_) CUDA_CHECK(cudaDeviceSynchronize());  // queued kernels may still use the old block
    *this = DeviceBuffer(bytes);
  }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

class PinnedBuffer {
 public:
  ~PinnedBuffer() {
    if (p_) cudaFreeHost(p_);
  }
  void* get() const { return p_; }
  void Reserve(size_t bytes) {
    if (bytes <= bytes_) return;
    if (p_) CUDA_CHECK(cudaFreeHost(p_));
    CUDA_CHECK(cudaMallocHost(&p_, bytes));
    bytes_ = bytes;
  }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

class CudaKvCache : public KvCache {
 public:
  explicit CudaKvCache(const KvCacheLayout& layout) {
    layout_ = layout;
    pool_bytes_ = (size_t)layout.n_blocks * layout.block_size * layout.n_kv_heads *
                  layout.head_dim * DTypeSize(layout.dtype);
    buf_ = DeviceBuffer(pool_bytes_ * 2 * layout.n_layers);
    // Zeroed once so that nothing reads uninitialised memory even through a stale slot.
    CUDA_CHECK(cudaMemset(buf_.get(), 0, buf_.bytes()));
  }
  void* k(int layer) const { return static_cast<char*>(buf_.get()) + pool_bytes_ * (2 * layer); }
  void* v(int layer) const { return static_cast<char*>(buf_.get()) + pool_bytes_ * (2 * layer + 1); }

 private:
  DeviceBuffer buf_;
  size_t pool_bytes_ = 0;
};

// The device copy of one step's index arrays (see BeginBatch). Sections at fixed offsets that
// depend only on the capacities, so the addresses stay put from step to step.
struct DeviceBatch {
  // Host spans this copy was made from (for recognising them in ops).
  BatchMetadata host;
  int64_t n_rows = 0;  // attention rows: max(q_begin + q_len)
  bool all_decode = false;  // every sequence has one query row (the decode attention kernel)
  int64_t cap_rows = 0, cap_seqs = 0;
  int table_stride = 0;
  // Device pointers into `dev`.
  const int64_t* slots = nullptr;
  const int32_t* tokens = nullptr;
  const int32_t* positions = nullptr;
  const int32_t* logit_rows = nullptr;
  const int32_t* row_seq = nullptr;
  const int32_t* seq_info = nullptr;
  const int32_t* block_tables = nullptr;
  DeviceBuffer dev;
  PinnedBuffer staging;
  cudaEvent_t uploaded = nullptr;  // the last upload from `staging` has completed
};

// Packs `meta` into b.staging and uploads it to b.dev on `stream` (batch_upload.cc); capacities
// only grow, so the device addresses stay stable across steps. keep_tokens: b.tokens already
// holds this step's tokens on the device (meta.tokens' values are not copied).
void UploadBatch(const BatchMetadata& meta, DeviceBatch& b, cudaStream_t stream,
                 bool keep_tokens = false);

}  // namespace petrel::kernels::cuda
