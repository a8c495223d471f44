// PyTorch checkpoints (`pytorch_model.bin`, torch.save's zip format since torch 1.6) read without
// Python: a stored (uncompressed) zip archive `<prefix>/data.pkl` + `<prefix>/data/<key>` (zip
// and zip64 records as in PKWARE's APPNOTE), the pickle run through the restricted unpickler
// (pickle.h), and every tensor checked against its storage: storage file size, element offset,
// size and stride bounds. Contiguous tensors alias the mapping; strided views (transposes,
// expands, slices of a shared storage) are gathered into their own contiguous buffer.
// The legacy pre-1.6 format (a bare pickle stream) is refused with a precise message.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mmap_file.h"
#include "core/tensor.h"

namespace petrel::formats {

struct TorchTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  const void* data = nullptr;  // contiguous row-major: into the mapping or into `owned`
  size_t nbytes = 0;
  std::vector<char> owned;
};

class TorchCheckpoint {
 public:
  // Opens one .bin file. Errors name the file and, for tensors, the state-dict key.
  static Result<TorchCheckpoint> Open(const std::string& path);
  // Same over an image in memory (tests); tensors may alias `bytes`.
  static Result<TorchCheckpoint> Parse(const char* bytes, size_t size, const std::string& name);

  // In state-dict order.
  const std::vector<std::unique_ptr<TorchTensor>>& tensors() const { return tensors_; }

 private:
  MmapFile file_;
  std::vector<std::unique_ptr<TorchTensor>> tensors_;
};

// `pytorch_model.bin`, or the shards listed in `pytorch_model.bin.index.json`, of `in` (a model
// directory or one .bin file) -> `model.safetensors`, or `model-0000i-of-0000n.safetensors` (one
// per input shard, same tensors) + `model.safetensors.index.json`, in `out_dir` (which must
// exist). Returns the files written. Every tensor is written as stored (same dtype and shape).
Result<std::vector<std::string>> ConvertTorchToSafetensors(const std::string& in, const std::string& out_dir);

}  // namespace petrel::formats
