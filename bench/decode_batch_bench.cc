// Batched decode throughput of the Model on any backend: B sequences with random prompts are
// prefilled (in forwards of up to --prefill-chunk tokens), then decode --gen-tokens steps
// together, every step a forward of B rows with greedy choices on the host (logits come back to
// the host, as in the engine) or, with --argmax device, on the backend (only ids come back; the
// engine does not use that yet), or with --argmax pipelined, on the backend with step n + 1
// launched before step n's ids reach the host (Model::LaunchArgMax: the tokens fed on the device;
// the engine does not use that yet either). Reports the new tokens per second of
// the decode phase and how much of it went to the forward (which includes the logits copy) and to
// the host argmax.
//
//   decode_batch_bench MODEL_DIR --device cuda --load-format dummy --batch 1,32,64,256
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "core/thread_pool.h"
#include "model/model.h"

using namespace petrel;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Result1 {
  int batch;
  double decode_tok_s, forward_ms, argmax_ms, prefill_tok_s;
};

Result1 RunBatch(model::Model& m, int B, int prompt, int gen, int chunk, DType kv, ThreadPool& pool,
                 const std::string& argmax) {
  const bool device_argmax = argmax == "device", pipelined = argmax == "pipelined";
  const int bs = 16;
  const int per_seq = (prompt + gen + bs - 1) / bs;
  auto cache = m.CreateKvCache((int64_t)B * per_seq, bs, kv);
  const int64_t vocab = m.config().vocab_size;
  std::vector<std::vector<int32_t>> tables(B);
  for (int s = 0; s < B; ++s)
    for (int i = 0; i < per_seq; ++i) tables[s].push_back(s * per_seq + i);
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> tok(0, (int32_t)vocab - 1);
  std::vector<int32_t> next(B);
  std::vector<float> logits;

  // Prefill: whole prompts, as many sequences per forward as fit in `chunk` tokens.
  const double p0 = Now();
  for (int s0 = 0; s0 < B;) {
    model::ForwardBatch b;
    int s = s0;
    for (; s < B && (s == s0 || (int)b.tokens.size() + prompt <= chunk); ++s) {
      const int begin = (int)b.tokens.size();
      for (int i = 0; i < prompt; ++i) {
        b.tokens.push_back(tok(rng));
        b.positions.push_back(i);
        b.slots.push_back((int64_t)tables[s][i / bs] * bs + i % bs);
      }
      b.seqs.push_back({begin, prompt, prompt, tables[s]});
      b.logit_rows.push_back((int32_t)b.tokens.size() - 1);
    }
    logits.resize(b.logit_rows.size() * vocab);
    m.Forward(b, *cache, logits.data());
    for (int i = s0; i < s; ++i) {
      const float* r = logits.data() + (size_t)(i - s0) * vocab;
      next[i] = (int32_t)(std::max_element(r, r + vocab) - r);
    }
    s0 = s;
  }
  const double p1 = Now();

  double fwd = 0, amax = 0;
  const double d0 = Now();
  for (int step = 0; step < gen + (pipelined ? 1 : 0); ++step) {
    if (pipelined && step == gen) {  // the last step's ids
      m.CollectArgMax(next.data());
      break;
    }
    model::ForwardBatch b;
    const int pos = prompt + step;
    for (int s = 0; s < B; ++s) {
      b.tokens.push_back(next[s]);
      b.positions.push_back(pos);
      b.slots.push_back((int64_t)tables[s][pos / bs] * bs + pos % bs);
      b.seqs.push_back({s, 1, pos + 1, tables[s]});
      b.logit_rows.push_back(s);
    }
    const double f0 = Now();
    if (pipelined) {  // this step launched, then the previous step's ids taken
      m.LaunchArgMax(b, *cache, step > 0);
      if (step > 0) m.CollectArgMax(next.data());
    } else if (device_argmax) {  // greedy on the backend: only the ids come back
      m.ForwardArgMax(b, *cache, next.data());
    } else {
      logits.resize((size_t)B * vocab);
      m.Forward(b, *cache, logits.data());
    }
    const double f1 = Now();
    if (!device_argmax && !pipelined)
      pool.ParallelFor(B, 1, [&](int64_t lo, int64_t hi, int) {
        for (int64_t s = lo; s < hi; ++s) {
          const float* r = logits.data() + (size_t)s * vocab;
          next[s] = (int32_t)(std::max_element(r, r + vocab) - r);
        }
      });
    fwd += f1 - f0;
    amax += Now() - f1;
  }
  const double d1 = Now();
  return {B, (double)B * gen / (d1 - d0), 1e3 * fwd / gen, 1e3 * amax / gen,
          (double)B * prompt / (p1 - p0)};
}

}  // namespace

int main(int argc, char** argv) {
  std::string batches = "1,32,64,256", load_format = "auto", device = "cpu", kv = "bf16";
  std::string sampling = "host";
  int prompt = 128, gen = 256, chunk = 8192, threads = 8;
  cli::Flags f("decode_batch_bench MODEL_DIR [--device cuda] [--load-format dummy] [--batch 1,32,256]");
  f.Add("batch", &batches, "comma-separated batch sizes (default 1,32,64,256)")
      .Add("prompt-tokens", &prompt, "prompt length (default 128)")
      .Add("gen-tokens", &gen, "decode steps (default 256)")
      .Add("prefill-chunk", &chunk, "max tokens per prefill forward (default 8192)")
      .Add("kv-cache-dtype", &kv, "bf16 (default) or f32")
      .Add("threads", &threads, "CPU threads: the CPU backend's, and the host argmax's (default 8)")
      .Add("device", &device, "cpu, cuda, cuda:N")
      .Add("load-format", &load_format, "auto or dummy")
      .Add("argmax", &sampling,
           "host (default: logits copied back, argmax on --threads host threads) or device "
           "(Backend::ArgMax, only ids come back) or pipelined (Model::LaunchArgMax: the next "
           "step launched before this one's ids are back)");
  if (auto st = f.Parse(argc, argv, 1); !st.ok() || f.positional().size() != 1) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return 2;
  }
  auto kv_dtype = ParseFloatDType(kv);
  if (!kv_dtype.ok()) return 2;
  auto m = model::LoadModel(f.positional()[0], model::LoadOptions{.load_format = load_format,
                                                                  .n_threads = threads,
                                                                  .device = device});
  if (!m.ok()) {
    std::fprintf(stderr, "decode_batch_bench: %s\n", m.error().ToString().c_str());
    return 1;
  }
  ThreadPool pool(threads);
  std::printf("device %s, %s, prompt %d, %d new tokens, kv %s, argmax on %s\n",
              (*m)->backend().name(), f.positional()[0].c_str(), prompt, gen, kv.c_str(),
              sampling.c_str());
  std::printf("%6s %14s %12s %12s %14s\n", "batch", "decode tok/s", "forward ms", "argmax ms",
              "prefill tok/s");
  std::stringstream ss(batches);
  for (std::string item; std::getline(ss, item, ',');) {
    const int B = std::stoi(item);
    RunBatch(**m, B, prompt, std::min(gen, 4), chunk, *kv_dtype, pool, sampling);  // warm-up (graphs)
    const Result1 r = RunBatch(**m, B, prompt, gen, chunk, *kv_dtype, pool, sampling);
    std::printf("%6d %14.1f %12.3f %12.3f %14.1f\n", r.batch, r.decode_tok_s, r.forward_ms,
                r.argmax_ms, r.prefill_tok_s);
    std::fflush(stdout);
  }
  return 0;
}
