// SafeTensors reader (format: https://github.com/huggingface/safetensors — an 8-byte little-endian
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {...}}, then the data buffer). Files are mmapped; tensors are zero-copy views into the mapping.
// Everything is validated before use: header length bound, JSON, dtype, shape, offsets inside the
// file, byte size = elements x dtype size, no overlap, no duplicate names.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mmap_file.h"
#include "core/tensor.h"

namespace petrel::formats {

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  const void* data;  // inside the owning file's mapping
  size_t nbytes;
  std::string file;  // file name (for messages)
  // A view that aliases the mapping (read-only; the caller must not write through it).
  TensorView view() const { return TensorView{const_cast<void*>(data), dtype, shape}; }
};

// One .safetensors file.
class SafetensorsFile {
 public:
  static Result<SafetensorsFile> Open(const std::string& path);
  // Parses a file image already in memory (used by Open and by the fuzzer); `name` is for messages.
  // The returned TensorInfo pointers alias `bytes`.
  static Result<std::vector<TensorInfo>> ParseHeader(const char* bytes, size_t size,
                                                     const std::string& name,
                                                     std::map<std::string, std::string>* metadata);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return file_.path(); }
  const MmapFile& mapping() const { return file_; }

 private:
  MmapFile file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a model directory: model.safetensors, or the shards listed in
// model.safetensors.index.json (every listed tensor must be in the shard the index names).
// Also usable for adapter files. Move-only; views stay valid while this object lives.
class TensorStore {
 public:
  static Result<TensorStore> OpenDirectory(const std::string& dir);
  static Result<TensorStore> OpenFiles(const std::vector<std::string>& paths);

  const TensorInfo* Find(const std::string& name) const;
  const std::map<std::string, const TensorInfo*>& all() const { return by_name_; }
  int64_t TotalBytes() const;
  // MmapFile::DropPages on the file that maps [p, p + n).
  void DropPages(const void* p, size_t n) const {
    for (const auto& f : files_) f->mapping().DropPages(p, n);
  }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> by_name_;
};

// Writes tensors to a .safetensors file (header sorted by name, 8-byte aligned data, as the
// Python library does). Used by merge / convert / tests.
struct TensorToWrite {
  std::string name;
  DType dtype;
  Shape shape;
  const void* data;
};
Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace petrel::formats
