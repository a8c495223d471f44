// Tensors: a TensorView is a non-owning (pointer, dtype, shape) triple, row-major and contiguous;
// a Tensor owns a 64-byte aligned host buffer, or memory a backend handed it together with a
// deleter (device memory for the CUDA backend). Views of mmapped weights are zero-copy.
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace petrel {

// Up to 4 dimensions, outermost first (as PyTorch/safetensors write them).
struct Shape {
  static constexpr int kMaxRank = 4;
  std::array<int64_t, kMaxRank> dims{};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d) {
    PETREL_CHECK(d.size() <= kMaxRank) << "rank " << d.size();
    for (int64_t v : d) dims[rank++] = v;
  }
  static Result<Shape> FromVector(const std::vector<int64_t>& d) {
    if (d.size() > kMaxRank) return Unsupported("tensor rank ", d.size(), " > ", kMaxRank);
    Shape s;
    for (int64_t v : d) s.dims[s.rank++] = v;
    return s;
  }
  int64_t operator[](int i) const { return dims[i]; }
  int64_t NumElements() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  bool operator==(const Shape& o) const {
    if (rank != o.rank) return false;
    for (int i = 0; i < rank; ++i)
      if (dims[i] != o.dims[i]) return false;
    return true;
  }
  std::string ToString() const {
    std::string s = "[";
    for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
  }
};

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Shape shape;

  int64_t NumElements() const { return shape.NumElements(); }
  size_t NumBytes() const { return DTypeBytes(dtype, NumElements()); }
  int64_t dim(int i) const { return shape[i]; }
  bool empty() const { return data == nullptr; }
  template <typename T>
  T* As() const { return static_cast<T*>(data); }
  // Row `i` of a matrix viewed as [rows, row_elems] where rows = shape[0].
  void* Row(int64_t i) const {
    return static_cast<char*>(data) + (size_t)i * (NumBytes() / (size_t)shape[0]);
  }
};

namespace internal {
// Releases a Tensor's buffer: std::free, or the deleter a backend handed over with it.
struct TensorFree {
  void (*deleter)(void* ctx, void* data) = nullptr;  // nullptr: std::free
  void* ctx = nullptr;
  void operator()(char* p) const {
    if (deleter) deleter(ctx, p);
    else std::free(p);
  }
};
}  // namespace internal

// Owning buffer. Move-only. By default 64-byte aligned host memory (std::aligned_alloc/std::free);
// a backend may hand over memory of its own (device memory, a pooled block) with the function that
// releases it: deleter(ctx, data) runs once, when the Tensor is destroyed or assigned over. The
// caller keeps `ctx` alive for as long as the Tensor lives.
class Tensor {
 public:
  using Deleter = void (*)(void* ctx, void* data);

  Tensor() = default;
  Tensor(void* data, DType dtype, Shape shape, Deleter deleter, void* ctx)
      : buf_(static_cast<char*>(data), Free{deleter, ctx}), view_{data, dtype, shape} {}
  Tensor(DType dtype, Shape shape) : view_{nullptr, dtype, shape} {
    size_t bytes = (view_.NumBytes() + 63) / 64 * 64;
    if (bytes == 0) bytes = 64;
    buf_.reset(static_cast<char*>(std::aligned_alloc(64, bytes)));
    PETREL_CHECK(buf_ != nullptr) << "out of memory allocating " << bytes << " bytes";
    view_.data = buf_.get();
  }
  Tensor(Tensor&&) = default;
  Tensor& operator=(Tensor&&) = default;

  const TensorView& view() const { return view_; }
  operator TensorView() const { return view_; }  // NOLINT
  void* data() const { return view_.data; }
  template <typename T>
  T* As() const { return view_.As<T>(); }
  const Shape& shape() const { return view_.shape; }
  DType dtype() const { return view_.dtype; }
  int64_t NumElements() const { return view_.NumElements(); }
  size_t NumBytes() const { return view_.NumBytes(); }

 private:
  using Free = internal::TensorFree;
  std::unique_ptr<char, Free> buf_;
  TensorView view_;
};

// Converts `n` elements of any float dtype to f32.
void ConvertToF32(const void* src, DType dtype, float* dst, int64_t n);
// Converts `n` f32 values to a float dtype (round to nearest even).
void ConvertFromF32(const float* src, DType dtype, void* dst, int64_t n);

}  // namespace petrel
