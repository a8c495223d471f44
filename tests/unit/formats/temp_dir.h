// A per-test temporary directory (removed on destruction), whole-file byte helpers and an
// error-matching assertion, for tests that build malformed model files by byte surgery.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <initializer_list>
#include <string>

#include "core/error.h"

namespace petrel::testing {

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "petrel_test_" + std::to_string(::getpid());
    if (info) name += std::string("_") + info->test_suite_name() + "_" + info->name();
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Absolute path of `name` inside the directory.
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), (std::streamsize)bytes.size());
}

// Passes when `r` failed with `code` and a message containing every one of `parts`.
template <typename T>
::testing::AssertionResult FailsWith(const Result<T>& r, ErrorCode code,
                                     std::initializer_list<std::string> parts) {
  if (r.ok()) return ::testing::AssertionFailure() << "expected an error, got success";
  const Error& e = r.error();
  if (e.code != code)
    return ::testing::AssertionFailure() << "code " << ErrorCodeName(e.code) << ", want "
                                         << ErrorCodeName(code) << " (" << e.message << ")";
  for (const auto& p : parts)
    if (e.message.find(p) == std::string::npos)
      return ::testing::AssertionFailure()
             << "message \"" << e.message << "\" lacks \"" << p << "\"";
  return ::testing::AssertionSuccess() << e.ToString();
}

}  // namespace petrel::testing
