// `petrel bench`: prefill and decode speed of one sequence (median of several runs), plus the
// machine's measured read bandwidth and the decode bound it implies (weight bytes per token).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "core/json_util.h"
#include "core/read_probe.h"
#include "core/kv_quant.h"
#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "model/sequence_runner.h"

namespace petrel::cli {

namespace {

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Read bandwidth (GB/s) over a 1 GiB buffer with the pool's threads: the fastest of `passes`
// passes of the probe pattern (core/read_probe.h).
class ReadProbe {
 public:
  explicit ReadProbe(int threads) : buf_((1ull << 30) / sizeof(uint64_t), 1), pool_(threads) {}
  double Measure(int passes) {
    double best = 0;
    uint64_t sink = 0;
    for (int rep = 0; rep < passes; ++rep)
      best = std::max(best, ReadPassGBs(pool_, buf_.data(), (int64_t)buf_.size(), &sink));
    if (sink == 0) std::fprintf(stderr, "?");
    return best;
  }

 private:
  std::vector<uint64_t> buf_;
  ThreadPool pool_;
};

}  // namespace

int RunBench(int argc, char** argv) {
  int prompt_tokens = 512, gen_tokens = 128, repeats = 3;
  bool json = false, no_bandwidth = false, op_profile = false;
  std::string kv = "auto";
  ModelFlags mf;
  Flags f("petrel bench MODEL_DIR [--load-format dummy] [--device cuda] [--prompt-tokens N] [--gen-tokens N] [--threads T] [--json]");
  f.Add("prompt-tokens", &prompt_tokens, "prefill length (default 512)")
      .Add("gen-tokens", &gen_tokens, "decode steps (default 128)")
      .Add("repeats", &repeats, "runs; the median is reported (default 3)")
      .Add("kv-cache-dtype", &kv, "auto (f32 on the CPU, bf16 on a GPU, as serve), f32, bf16 or int8")
      .AddSwitch("no-bandwidth", &no_bandwidth, "skip the memory-bandwidth measurement")
      .AddSwitch("json", &json, "print a JSON summary as the last line")
      .AddSwitch("op-profile", &op_profile,
                 "time every backend op of the last decode run and print ms per token per op (CPU)");
  mf.Register(f);
  if (auto st = f.Parse(argc, argv); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1 || prompt_tokens < 1 || gen_tokens < 1 || repeats < 1) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  if (kv == "auto") kv = mf.device == "cpu" ? "f32" : "bf16";
  auto kv_dtype = ParseKvCacheDType(kv);
  if (!kv_dtype.ok()) return ReportError(kv_dtype.error());
  auto t_load0 = std::chrono::steady_clock::now();
  model::LoadOptions load_opts = mf.ToLoadOptions();
  load_opts.op_profile = op_profile;
  if (op_profile && mf.device != "cpu")
    return ReportError(Unsupported("--op-profile times ops that finish before they return: CPU only"));
  auto model = model::LoadModel(f.positional()[0], load_opts);
  if (!model.ok()) return ReportError(model.error());
  auto t_load1 = std::chrono::steady_clock::now();
  model::Model& m = **model;
  if (*kv_dtype == DType::kI8 && std::string_view(m.backend().name()) != "cpu")
    return ReportError(Unsupported("--kv-cache-dtype int8 is implemented on the CPU backend only"));
  const int threads = mf.threads > 0 ? mf.threads : ThreadPool::HardwareThreads();
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> tok(0, (int32_t)m.config().vocab_size - 1);
  std::vector<int32_t> prompt(prompt_tokens);
  for (auto& t : prompt) t = tok(rng);

  model::SequenceRunner runner(m, prompt_tokens + gen_tokens + 1, *kv_dtype);
  runner.Append(std::span(prompt).first(std::min(prompt_tokens, 16)), false);  // warm-up
  std::vector<double> prefill, decode, read_bw, fraction;
  // The host-memory bandwidth bound only means something for the CPU backend. A VM's memory
  // bandwidth drifts by tens of percent within minutes, so the bound is measured next to each
  // decode run (just before it) and each run is compared with its own bound; the medians are
  // reported.
  const bool on_cpu = mf.device == "cpu";
  std::unique_ptr<ReadProbe> probe;
  // Decode tok/s if every weight byte is read once per token at gb_s.
  auto BoundOf = [&](double gb_s) { return gb_s * 1e9 / (double)m.WeightBytes(); };
  if (!no_bandwidth && on_cpu) probe = std::make_unique<ReadProbe>(threads);
  for (int r = 0; r < repeats; ++r) {
    runner.Reset();
    auto t0 = std::chrono::steady_clock::now();
    auto logits = runner.Append(prompt, false);
    auto t1 = std::chrono::steady_clock::now();
    prefill.push_back(prompt_tokens / Seconds(t0, t1));
    int32_t next = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (probe) read_bw.push_back(probe->Measure(3));
    if (m.op_profile()) m.op_profile()->Reset();
    auto t2 = std::chrono::steady_clock::now();
    // Greedy through Backend::ArgMax on the step's logits where they are (no copy of the logits to
    // the host; CPU: the vectorised argmax); on a device pipelined, as the engine decodes.
    runner.GreedyDecode(next, gen_tokens);
    auto t3 = std::chrono::steady_clock::now();
    decode.push_back(gen_tokens / Seconds(t2, t3));
    if (probe) fraction.push_back(decode.back() / BoundOf(read_bw.back()));
  }
  const double pp = Median(prefill), tg = Median(decode);
  const double bw = probe ? Median(read_bw) : 0.0;
  const double bound = bw > 0 ? BoundOf(bw) : 0.0;
  const double frac = probe ? Median(fraction) : 0.0;
  std::fprintf(stderr,
               "model %s (%s, %s weights %.1f MB), %d threads, ISA %s, load %.2f s\n"
               "prefill %d tokens: %.1f tok/s   decode %d tokens: %.2f tok/s\n",
               f.positional()[0].c_str(), m.config().architecture.c_str(), DTypeName(m.config().dtype),
               m.WeightBytes() / 1e6, threads, on_cpu ? kernels::CpuIsaName() : m.backend().name(),
               Seconds(t_load0, t_load1),
               prompt_tokens, pp, gen_tokens, tg);
  if (bw > 0)
    std::fprintf(stderr,
                 "read bandwidth %.1f GB/s (median of one probe per run) -> decode bound %.2f tok/s; "
                 "decode at %.0f%% of bound (median of each run against its own probe)\n",
                 bw, bound, 100 * frac);
  if (m.op_profile()) {  // the last run's decode (the probe ran before its Reset)
    std::fprintf(stderr, "decode ops, ms per token (last run):\n");
    for (const kernels::OpTime& t : m.op_profile()->Snapshot())
      std::fprintf(stderr, "  %8.3f ms %6.1f calls  %s\n", 1e3 * t.seconds / gen_tokens,
                   (double)t.calls / gen_tokens, t.op.c_str());
  }
  if (json) {
    Json j;
    j["prefill_tok_s"] = pp;
    j["decode_tok_s"] = tg;
    j["prompt_tokens"] = prompt_tokens;
    j["gen_tokens"] = gen_tokens;
    j["threads"] = threads;
    j["isa"] = kernels::CpuIsaName();
    j["device"] = m.backend().name();
    j["weight_bytes"] = m.WeightBytes();
    j["read_gb_s"] = bw;
    j["decode_bound_tok_s"] = bound;
    j["decode_fraction_of_bound"] = frac;
    j["read_gb_s_runs"] = read_bw;
    j["decode_tok_s_runs"] = decode;
    std::printf("%s\n", DumpJson(j).c_str());
  }
  return 0;
}

}  // namespace petrel::cli
