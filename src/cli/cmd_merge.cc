// `petrel merge BASE_DIR ADAPTER_DIR -o OUT_DIR [--dtype bf16] [--max-shard-size 5GB]`: folds a
// PEFT or MLX-LM LoRA adapter into the base weights and writes a standalone Hugging Face model
// directory (what PEFT's merge_and_unload() + save_pretrained() produce).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "model/lora/merge.h"

namespace petrel::cli {

namespace {

// "-o X" is accepted as "--output X".
std::vector<char*> WithLongOutputFlag(int argc, char** argv) {
  static char kOutput[] = "--output";
  std::vector<char*> v(argv, argv + argc);
  for (auto& a : v)
    if (std::strcmp(a, "-o") == 0) a = kOutput;
  return v;
}

// A one-line progress bar on stderr, redrawn at most every 100 ms (and at the end).
class ProgressBar {
 public:
  explicit ProgressBar(const char* label) : label_(label), tty_(isatty(2)) {}
  void Update(int64_t done, int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const int width = 30;
    const int fill = total > 0 ? (int)(width * done / total) : width;
    std::fprintf(stderr, "%s%s [%.*s%*s] %3d%% %.2f / %.2f GB%s", tty_ ? "\r" : "", label_, fill,
                 "##############################", width - fill, "", total > 0 ? (int)(100 * done / total) : 100,
                 done / 1e9, total / 1e9, tty_ ? "" : "\n");
    if (done >= total && tty_) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  const char* label_;
  bool tty_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

int RunMerge(int argc, char** argv) {
  std::string out_dir, dtype_arg, shard_arg = "5GB";
  int threads = 0;
  Flags f("petrel merge BASE_DIR ADAPTER_DIR -o OUT_DIR [--dtype bf16|f16|f32] [--max-shard-size 5GB]");
  f.Add("output", &out_dir, "output model directory (also -o)")
      .Add("dtype", &dtype_arg, "dtype of the written weights (default: the base model's)")
      .Add("max-shard-size", &shard_arg, "largest safetensors shard, e.g. 5GB, 500MB (default 5GB)")
      .Add("threads", &threads, "CPU threads (default: all)");
  auto args = WithLongOutputFlag(argc, argv);
  if (auto st = f.Parse((int)args.size(), args.data()); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 2 || out_dir.empty()) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  model::lora::MergeOptions opts;
  opts.n_threads = threads;
  if (!dtype_arg.empty()) {
    auto dt = ParseFloatDType(dtype_arg);
    if (!dt.ok()) return ReportError(dt.error());
    opts.dtype = *dt;
  }
  auto shard = model::lora::ParseByteSize(shard_arg);
  if (!shard.ok()) return ReportError(shard.error());
  opts.max_shard_bytes = *shard;
  ProgressBar bar("merging");
  opts.progress = [&](int64_t done, int64_t total) { bar.Update(done, total); };
  const auto t0 = std::chrono::steady_clock::now();
  auto st = model::lora::MergeAdapter(f.positional()[0], f.positional()[1], out_dir, opts);
  if (!st.ok()) return ReportError(st.error());
  std::fprintf(stderr, "merged %s into %s -> %s (%.1f s)\n", f.positional()[1].c_str(),
               f.positional()[0].c_str(), out_dir.c_str(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

}  // namespace petrel::cli
