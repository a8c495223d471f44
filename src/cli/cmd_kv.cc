// `petrel kv`: KV-cache memory from config.json alone (no weights loaded):
// bytes per token = 2 (K and V) x layers x kv_heads x head_dim x bytes per element.
#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "formats/hf_config.h"

namespace petrel::cli {

namespace {
std::string Human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}
}  // namespace

int RunKv(int argc, char** argv) {
  std::string contexts = "4096,32768", dtype = "bf16";
  int batch = 1;
  Flags f("petrel kv MODEL_DIR [--context 4096,32768] [--batch N] [--dtype bf16|f16|f32|int8]");
  f.Add("context", &contexts, "context lengths, comma-separated (default 4096,32768)")
      .Add("batch", &batch, "concurrent sequences (default 1)")
      .Add("dtype", &dtype, "KV element type: bf16 (default), f16, f32, int8 (+ an f32 scale per head vector)");
  if (auto st = f.Parse(argc, argv); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1 || batch < 1) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  auto config = formats::LoadHfConfig(f.positional()[0]);
  if (!config.ok()) return ReportError(config.error());
  auto dt = dtype == "int8" ? Result<DType>(DType::kI8) : ParseFloatDType(dtype);
  if (!dt.ok()) return ReportError(dt.error());
  std::vector<int64_t> ctx;
  std::stringstream ss(contexts);
  for (std::string part; std::getline(ss, part, ',');) {
    char* end = nullptr;
    const long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end || v <= 0) return ReportError(InvalidArgument("--context: bad length \"", part, "\""));
    ctx.push_back(v);
  }
  const auto& c = *config;
  const int64_t per_token = c.KvBytesPerToken(*dt);
  const int64_t weights = c.NumParameters() * (int64_t)DTypeSize(c.dtype);
  std::printf("%s: %s, %lld layers x %lld kv heads x head_dim %lld, KV %s\n", f.positional()[0].c_str(),
              c.architecture.c_str(), (long long)c.n_layers, (long long)c.n_kv_heads, (long long)c.head_dim,
              DTypeName(*dt));
  std::printf("weights (%s): %s; KV per token: 2 x %lld x %lld x %lld x %zu = %lld bytes (%s)\n",
              DTypeName(c.dtype), Human((double)weights).c_str(), (long long)c.n_layers, (long long)c.n_kv_heads,
              (long long)c.head_dim, DTypeSize(*dt), (long long)per_token, Human((double)per_token).c_str());
  std::printf("%-10s %-6s %-14s %-14s\n", "context", "batch", "KV cache", "KV + weights");
  for (int64_t n : ctx) {
    const double kv = (double)per_token * (double)n * batch;
    std::printf("%-10lld %-6d %-14s %-14s\n", (long long)n, batch, Human(kv).c_str(), Human(kv + (double)weights).c_str());
  }
  if (c.max_position_embeddings > 0)
    std::printf("model max context: %lld tokens\n", (long long)c.max_position_embeddings);
  return 0;
}

}  // namespace petrel::cli
