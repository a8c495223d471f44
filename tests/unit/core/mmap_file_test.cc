// MmapFile: the mapping reads the file's bytes; DropPages releases whole pages of a range from the
// process and a later read faults the same bytes back in (the loader drops mapped weights that
// packed or converted copies replaced); ranges outside the mapping are ignored.
#include "core/mmap_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace petrel {
namespace {

TEST(MmapFile, DropPagesKeepsTheBytes) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("petrel_mmap_" + std::to_string(::getpid())))
          .string();
  const size_t page = (size_t)::sysconf(_SC_PAGESIZE), n = 5 * page + 123;
  std::vector<char> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = (char)(i * 131 + i / 7);
  std::ofstream(path, std::ios::binary).write(bytes.data(), (std::streamsize)n);
  auto f = MmapFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  ASSERT_EQ(f->size(), n);
  ASSERT_EQ(std::string(f->data(), n), std::string(bytes.data(), n));
  f->DropPages(f->data() + 10, n - 20);  // pages 1..4 whole inside: dropped
  f->DropPages(f->data(), n);            // all of it
  f->DropPages(f->data() + n - 5, 100);  // past the end: ignored
  f->DropPages(bytes.data(), n);         // not this mapping (heap memory): ignored
  EXPECT_EQ(std::string(f->data(), n), std::string(bytes.data(), n));
  EXPECT_EQ(std::string(bytes.data(), 8), std::string(f->data(), 8));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace petrel
