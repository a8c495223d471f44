// GGUF reader and writer (the llama.cpp file format; layout read from ggml's docs/gguf.md and
// gguf.c, not copied): "GGUF", version (2 or 3), tensor count, KV count; KV pairs (string key,
// typed value, arrays of typed values); tensor infos (name, n_dims, ne[] innermost first, ggml
// type, offset); padding to `general.alignment` (default 32); the tensor data. Every length,
// count, dimension, offset and size is validated against the file before use; nothing is read
// outside the mapping.
//
// Tensor types: F32, F16, BF16, Q8_0, Q4_0, Q4_1 map to petrel dtypes of the same layout
// (zero-copy); Q5_0, Q5_1, Q4_K, Q5_K, Q6_K are readable through DequantizeGgufTensor(); any other
// type is refused by its ggml name.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "core/mmap_file.h"
#include "core/tensor.h"

namespace petrel::formats {

// ggml_type values used here (ggml.h numbering).
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30,
};
const char* GgmlTypeName(uint32_t t);

struct GgufTensor {
  std::string name;
  uint32_t type = 0;           // ggml type
  std::vector<int64_t> ne;     // dims, innermost first (ne[0] = row length)
  const void* data = nullptr;  // inside the mapping
  size_t nbytes = 0;
  Shape shape;                 // petrel order (outermost first): [ne[1], ne[0]] for a matrix
  // The petrel dtype of the same layout, or nullopt-like kBool marker when it must be dequantized.
  bool direct = false;         // true: view() is usable as is
  DType dtype = DType::kF32;   // valid when direct
  TensorView view() const { return TensorView{const_cast<void*>(data), dtype, shape}; }
};

class GgufFile {
 public:
  static Result<GgufFile> Open(const std::string& path);
  // Parses an image in memory (tests / fuzzing); tensors alias `bytes`.
  static Result<GgufFile> Parse(const char* bytes, size_t size, const std::string& name);

  uint32_t version() const { return version_; }
  // KV metadata as JSON: numbers, bools, strings, arrays (keys as in the file).
  const Json& metadata() const { return kv_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* Find(const std::string& name) const;
  const std::string& name() const { return name_; }
  // The file's mapping (empty for an image parsed from memory).
  const MmapFile& mapping() const { return file_; }

 private:
  MmapFile file_;
  std::string name_;
  uint32_t version_ = 0;
  Json kv_ = Json::object();
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> index_;
};

// Dequantizes any supported GGUF tensor (every type above) to f32, `n` = elements.
Status DequantizeGguf(const void* data, uint32_t type, int64_t n, float* out);

// Writer: KV pairs (string, integer, float, bool or arrays of those in `kv`, written as
// STRING / UINT32 (INT64 when negative or large) / FLOAT32 / BOOL / ARRAY) and tensors given in
// GGUF order (ne innermost first). Data are aligned to 32 bytes.
struct GgufTensorToWrite {
  std::string name;
  uint32_t type;
  std::vector<int64_t> ne;
  const void* data;
  size_t nbytes;
};
Status WriteGguf(const std::string& path, const OrderedJson& kv,
                 const std::vector<GgufTensorToWrite>& tensors);

}  // namespace petrel::formats
