// `petrel inspect`: what a model directory holds — architecture, parameters, dtypes, tensors.
#include <cstdio>
#include <map>
#include <string>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"

namespace petrel::cli {

namespace {
struct Printer {
  void operator()(const char* name, const std::string& v) const { std::printf("  %-26s %s\n", name, v.c_str()); }
  void operator()(const char* name, int64_t v) const { std::printf("  %-26s %lld\n", name, (long long)v); }
  void operator()(const char* name, double v) const { std::printf("  %-26s %g\n", name, v); }
  void operator()(const char* name, bool v) const { std::printf("  %-26s %s\n", name, v ? "true" : "false"); }
};
}  // namespace

int RunInspect(int argc, char** argv) {
  bool tensors = false;
  Flags f("petrel inspect MODEL_DIR [--tensors]");
  f.AddSwitch("tensors", &tensors, "list every tensor with dtype, shape and bytes");
  if (auto st = f.Parse(argc, argv); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  const std::string dir = f.positional()[0];
  auto config = formats::LoadHfConfig(dir);
  if (!config.ok()) return ReportError(config.error());
  std::printf("%s\n", dir.c_str());
  config->Visit(Printer{});
  std::printf("  %-26s %lld (%.1f M)\n", "parameters (from config)", (long long)config->NumParameters(),
              config->NumParameters() / 1e6);
  std::printf("  %-26s %lld bytes per token (f32), %lld (bf16)\n", "kv cache",
              (long long)config->KvBytesPerToken(DType::kF32), (long long)config->KvBytesPerToken(DType::kBF16));
  auto store = formats::TensorStore::OpenDirectory(dir);
  if (!store.ok()) {
    std::printf("  weights: %s\n", store.error().ToString().c_str());
    return 0;
  }
  std::map<std::string, std::pair<int64_t, int64_t>> by_dtype;  // dtype -> (tensors, bytes)
  int64_t params = 0;
  for (const auto& [name, t] : store->all()) {
    by_dtype[DTypeName(t->dtype)].first++;
    by_dtype[DTypeName(t->dtype)].second += (int64_t)t->nbytes;
    params += t->shape.NumElements();
  }
  std::printf("  %-26s %zu tensors, %lld parameters, %.1f MB\n", "weights (files)", store->all().size(),
              (long long)params, store->TotalBytes() / 1e6);
  for (const auto& [dt, nb] : by_dtype)
    std::printf("    %-6s %5lld tensors %12lld bytes\n", dt.c_str(), (long long)nb.first, (long long)nb.second);
  if (tensors) {
    for (const auto& [name, t] : store->all())
      std::printf("  %-60s %-5s %-18s %lld\n", name.c_str(), DTypeName(t->dtype), t->shape.ToString().c_str(),
                  (long long)t->nbytes);
  }
  return 0;
}

}  // namespace petrel::cli
