#include "runtime/kv_plan.h"

#include <algorithm>
#include <cstdio>

namespace petrel::runtime {

namespace {

std::string Mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", (double)bytes / (1 << 20));
  return buf;
}

}  // namespace

Result<KvPlan> PlanKvCache(const KvPlanInput& in) {
  if (in.bytes_per_block <= 0 || in.block_size <= 0 || in.max_model_len <= 0 || in.max_num_seqs <= 0)
    return InvalidArgument("KV plan: sizes must be positive");
  const int64_t per_block = in.bytes_per_block;
  const auto blocks_for = [&](int64_t tokens) { return (tokens + in.block_size - 1) / in.block_size; };
  KvPlan p;
  p.device = in.device_total_bytes > 0;
  if (!p.device) {
    if (in.kv_cache_bytes > 0) {
      p.n_blocks = in.kv_cache_bytes / per_block;
      if (p.n_blocks < 1)
        return InvalidArgument("--kv-cache-memory ", in.kv_cache_bytes, " bytes holds no block of ",
                               per_block, " bytes");
    } else {
      const int64_t want = (int64_t)in.max_num_seqs * blocks_for(std::min(in.max_model_len, 4096));
      p.n_blocks = std::max<int64_t>(std::min<int64_t>(want, (1LL << 30) / per_block),
                                     blocks_for(in.max_model_len));
    }
  } else {
    const double u = in.gpu_memory_utilization;
    if (!(u > 0.0) || u > 1.0)
      return InvalidArgument("--gpu-memory-utilization must be in (0, 1], got ", u);
    const int64_t used = in.device_total_bytes - in.device_free_bytes;
    p.budget_bytes = (int64_t)(u * (double)in.device_total_bytes) - used;
    int64_t bytes = p.budget_bytes;
    if (in.kv_cache_bytes > 0 && in.kv_cache_bytes < bytes) {
      bytes = in.kv_cache_bytes;
      p.capped = true;
    }
    p.n_blocks = bytes > 0 ? bytes / per_block : 0;
    if (p.n_blocks < 1) {
      return MakeError(ErrorCode::kResourceExhausted, "no KV-cache block fits on the device: ",
                       "weights and activations use ", Mib(used), " of ", Mib(in.device_total_bytes),
                       ", --gpu-memory-utilization ", u, " allows ",
                       Mib((int64_t)(u * (double)in.device_total_bytes)),
                       (p.capped ? ", --kv-cache-memory " + Mib(in.kv_cache_bytes) : std::string()),
                       "; one block of ", in.block_size, " tokens needs ", Mib(per_block),
                       ". Raise --gpu-memory-utilization or use a smaller model");
    }
    if (p.n_blocks < blocks_for(in.max_model_len)) {
      return MakeError(ErrorCode::kResourceExhausted, "the KV cache fits ",
                       p.n_blocks * in.block_size, " tokens (", Mib(p.n_blocks * per_block),
                       "), fewer than one sequence of max_model_len ", in.max_model_len,
                       " needs; lower --max-model-len or raise --gpu-memory-utilization",
                       (p.capped ? " / --kv-cache-memory" : ""));
    }
  }
  p.capacity_tokens = p.n_blocks * in.block_size;
  p.bytes = p.n_blocks * per_block;
  p.max_concurrency = (double)p.capacity_tokens / in.max_model_len;
  return p;
}

std::string DescribeKvPlan(const KvPlan& p, const KvPlanInput& in) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%lld blocks of %d tokens = %lld tokens (%s); max concurrency at max_model_len %d: "
                "%.2fx",
                (long long)p.n_blocks, in.block_size, (long long)p.capacity_tokens,
                Mib(p.bytes).c_str(), in.max_model_len, p.max_concurrency);
  std::string s = buf;
  if (p.device) {
    std::snprintf(buf, sizeof buf,
                  "; device %s total, %s in use before the cache, utilization %.2f leaves %s%s",
                  Mib(in.device_total_bytes).c_str(),
                  Mib(in.device_total_bytes - in.device_free_bytes).c_str(),
                  in.gpu_memory_utilization, Mib(p.budget_bytes).c_str(),
                  p.capped ? " (capped by --kv-cache-memory)" : "");
    s += buf;
  }
  return s;
}

}  // namespace petrel::runtime
