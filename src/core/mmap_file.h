// Read-only memory-mapped file (RAII, move-only). Weights are read through views into it.
#pragma once

#include <cstddef>
#include <string>

#include "core/error.h"

namespace petrel {

class MmapFile {
 public:
  // Maps `path` read-only. Errors name the path and the OS reason.
  static Result<MmapFile> Open(const std::string& path);

  MmapFile() = default;
  MmapFile(MmapFile&& o) noexcept { *this = std::move(o); }
  MmapFile& operator=(MmapFile&& o) noexcept;
  MmapFile(const MmapFile&) = delete;
  MmapFile& operator=(const MmapFile&) = delete;
  ~MmapFile();

  const char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops the whole pages of [p, p + n) that lie in this mapping from the process's memory
  // (madvise MADV_DONTNEED): the mapping is read-only, so a later read faults the same bytes back
  // in from the file (page cache). For weights nothing reads any more (converted or packed copies
  // replaced them). Ranges outside the mapping are ignored.
  void DropPages(const void* p, size_t n) const;

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Reads a whole file into a string (for small JSON files).
Result<std::string> ReadFile(const std::string& path);
bool FileExists(const std::string& path);

}  // namespace petrel
