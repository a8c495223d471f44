// Tokenizer benchmark: load time of tokenizer.json and single-thread encode throughput (MB/s of
// UTF-8 input) on the differential corpus (tests/fixtures/tokenizers/corpus, ~300 KB of mixed
// languages, code, whitespace oddities and special-token text).
//
//   tokenizer_bench [--root REPO_DIR] [--reps N]
//
// Prints one JSON object. "first_pass" encodes the corpus once with a freshly loaded tokenizer
// (cold BPE word cache); "best" is the fastest of N further passes (warm cache), which is how
// a long-running server sees it. The Rust `tokenizers` numbers for the same corpus come from
// tools/gen_tokenizer_refs.py bench; docs/PERFORMANCE.md has both.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string root = PETREL_SOURCE_DIR;
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--root"))
      root = argv[i + 1];
    else if (!std::strcmp(argv[i], "--reps"))
      reps = std::max(1, std::atoi(argv[i + 1]));
  }
  const std::filesystem::path fixtures = std::filesystem::path(root) / "tests" / "fixtures";

  // Corpus documents, in name order (same order as the Python side).
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(fixtures / "tokenizers" / "corpus")) {
    if (e.path().extension() == ".txt") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> docs;
  size_t n_bytes = 0;
  for (const auto& f : files) {
    docs.push_back(ReadFile(f));
    n_bytes += docs.back().size();
  }
  if (docs.empty()) {
    std::fprintf(stderr, "no corpus under %s\n", (fixtures / "tokenizers" / "corpus").c_str());
    return 1;
  }

  const std::pair<const char*, std::filesystem::path> models[] = {
      {"qwen3", fixtures / "qwen3-tiny"},
      {"llama2", fixtures / "tokenizers" / "llama2"},
      {"llama3", fixtures / "tokenizers" / "llama3"},
  };
  std::printf("{\n \"corpus_bytes\": %zu,\n \"corpus_docs\": %zu", n_bytes, docs.size());
  for (const auto& [name, dir] : models) {
    // Load: best and median of 5 (file contents read once up front, so this is parse + build).
    const std::string json = ReadFile(dir / "tokenizer.json");
    const std::string config = ReadFile(dir / "tokenizer_config.json");
    std::vector<double> loads;
    std::unique_ptr<petrel::tokenizer::Tokenizer> tok;
    for (int i = 0; i < 5; ++i) {
      auto t0 = Clock::now();
      auto r = petrel::tokenizer::Tokenizer::FromJson(json, config);
      auto t1 = Clock::now();
      if (!r.ok()) {
        std::fprintf(stderr, "%s: %s\n", name, r.error().ToString().c_str());
        return 1;
      }
      loads.push_back(Seconds(t0, t1));
      tok = std::move(r).value();
    }
    std::sort(loads.begin(), loads.end());
    // Encode passes over the corpus, one thread.
    std::vector<double> passes;
    size_t n_ids = 0;
    for (int rep = 0; rep <= reps; ++rep) {
      n_ids = 0;
      auto t0 = Clock::now();
      for (const auto& d : docs) {
        auto ids = tok->Encode(d, {.add_special_tokens = false});
        if (!ids.ok()) {
          std::fprintf(stderr, "%s: %s\n", name, ids.error().ToString().c_str());
          return 1;
        }
        n_ids += ids->size();
      }
      passes.push_back(Seconds(t0, Clock::now()));
    }
    const double best = *std::min_element(passes.begin() + 1, passes.end());
    std::printf(
        ",\n \"%s\": {\"load_ms_min\": %.1f, \"load_ms_median\": %.1f, \"first_pass_mb_s\": %.2f, "
        "\"best_mb_s\": %.2f, \"ids\": %zu}",
        name, loads.front() * 1e3, loads[loads.size() / 2] * 1e3, n_bytes / passes[0] / 1e6,
        n_bytes / best / 1e6, n_ids);
  }
  std::printf("\n}\n");
  return 0;
}
