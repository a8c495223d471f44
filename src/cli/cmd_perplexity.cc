// `petrel perplexity MODEL_DIR --file TEXT [--quant ...] [--kl-base] [--ctx 512]`: perplexity of a
// model over a text file, in consecutive windows of --ctx tokens (each window starts a fresh
// sequence; every token after the first of a window is scored). With --kl-base the same model is
// also loaded without --quant and, position by position, the KL divergence KL(base || quantized)
// of the next-token distributions and the agreement of their top-1 tokens are reported: the cost
// of a quantization choice measured on the user's own model and text.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "cli/model_text.h"
#include "core/json_util.h"
#include "core/kv_quant.h"
#include "model/sequence_runner.h"
#include "tokenizer/tokenizer.h"

namespace petrel::cli {

namespace {

// log-softmax of one row into `out` (double for the sums).
void LogSoftmax(const float* row, int64_t n, std::vector<double>& out) {
  out.resize(n);
  const float mx = *std::max_element(row, row + n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp((double)row[i] - mx);
  const double lse = mx + std::log(s);
  for (int64_t i = 0; i < n; ++i) out[i] = (double)row[i] - lse;
}

}  // namespace

int RunPerplexity(int argc, char** argv) {
  std::string file, kv = "f32";
  int ctx = 512, max_windows = 0;
  bool kl_base = false, json = false;
  ModelFlags mf;
  Flags f("petrel perplexity MODEL_DIR --file TEXT [--quant int8|int4[:g]|q4_0] [--kv-cache-dtype int8] [--kl-base] [--ctx 512]");
  f.Add("file", &file, "text file to score")
      .Add("ctx", &ctx, "window length in tokens (default 512)")
      .Add("max-windows", &max_windows, "score at most this many windows (default: all)")
      .Add("kv-cache-dtype", &kv, "KV cache of the scored model: f32 (default), bf16 or int8")
      .AddSwitch("kl-base", &kl_base,
                 "also run the unquantized model (f32 KV cache): KL divergence and top-1 agreement")
      .AddSwitch("json", &json, "print a JSON summary as the last line");
  mf.Register(f);
  if (auto st = f.Parse(argc, argv); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1 || file.empty() || ctx < 2) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  auto kv_dtype = ParseKvCacheDType(kv);
  if (!kv_dtype.ok()) return ReportError(kv_dtype.error());
  const std::string dir = f.positional()[0];
  std::ifstream in(file, std::ios::binary);
  if (!in) return ReportError(NotFound("cannot read --file ", file));
  std::stringstream ss;
  ss << in.rdbuf();
  auto tok = LoadTokenizer(dir);
  if (!tok.ok()) return ReportError(tok.error());
  auto ids = (*tok)->Encode(ss.str());
  if (!ids.ok()) return ReportError(ids.error());

  auto model = model::LoadModel(dir, mf.ToLoadOptions());
  if (!model.ok()) return ReportError(model.error());
  std::unique_ptr<model::Model> base;
  if (kl_base) {
    model::LoadOptions o = mf.ToLoadOptions();
    o.quant.clear();
    auto b = model::LoadModel(dir, o);
    if (!b.ok()) return ReportError(b.error());
    base = std::move(*b);
  }
  const int64_t vocab = (*model)->config().vocab_size;
  ctx = (int)std::min<int64_t>(ctx, (*model)->config().max_position_embeddings);
  const int64_t n_windows_all = (int64_t)ids->size() / ctx;
  const int64_t n_windows = max_windows > 0 ? std::min<int64_t>(max_windows, n_windows_all) : n_windows_all;
  if (n_windows == 0)
    return ReportError(InvalidArgument("the file has ", ids->size(), " tokens, fewer than --ctx ", ctx));

  if (*kv_dtype == DType::kI8 && std::string_view((*model)->backend().name()) != "cpu")
    return ReportError(Unsupported("--kv-cache-dtype int8 is implemented on the CPU backend only"));
  model::SequenceRunner runner(**model, ctx, *kv_dtype);
  std::unique_ptr<model::SequenceRunner> base_runner;
  if (base) base_runner = std::make_unique<model::SequenceRunner>(*base, ctx);
  double nll = 0, nll_base = 0, kl = 0;
  int64_t scored = 0, agree = 0;
  std::vector<double> lp, lpb;
  for (int64_t w = 0; w < n_windows; ++w) {
    std::span<const int32_t> win(ids->data() + w * ctx, ctx);
    runner.Reset();
    std::vector<float> logits = runner.Append(win, /*all_logits=*/true);
    std::vector<float> logits_b;
    if (base_runner) {
      base_runner->Reset();
      logits_b = base_runner->Append(win, true);
    }
    for (int p = 0; p + 1 < ctx; ++p) {
      const float* row = logits.data() + (int64_t)p * vocab;
      LogSoftmax(row, vocab, lp);
      nll -= lp[win[p + 1]];
      if (base_runner) {
        const float* rb = logits_b.data() + (int64_t)p * vocab;
        LogSoftmax(rb, vocab, lpb);
        nll_base -= lpb[win[p + 1]];
        double k = 0;
        for (int64_t i = 0; i < vocab; ++i) k += std::exp(lpb[i]) * (lpb[i] - lp[i]);
        kl += k;
        agree += (std::max_element(row, row + vocab) - row) == (std::max_element(rb, rb + vocab) - rb);
      }
      ++scored;
    }
    std::fprintf(stderr, "\rwindow %lld/%lld  ppl %.4f", (long long)(w + 1), (long long)n_windows,
                 std::exp(nll / scored));
  }
  std::fprintf(stderr, "\n");
  const double ppl = std::exp(nll / scored);
  std::printf("tokens scored %lld (%lld windows of %d), quant %s, KV %s\nperplexity %.4f\n", (long long)scored,
              (long long)n_windows, ctx, mf.quant.empty() ? "none" : mf.quant.c_str(), kv.c_str(), ppl);
  if (base_runner)
    std::printf("base perplexity %.4f\nKL(base||quant) mean %.6f nats\ntop-1 agreement %.2f%%\n",
                std::exp(nll_base / scored), kl / scored, 100.0 * agree / scored);
  if (json) {
    Json j;
    j["tokens"] = scored;
    j["ctx"] = ctx;
    j["quant"] = mf.quant;
    j["kv_cache_dtype"] = kv;
    j["perplexity"] = ppl;
    if (base_runner) {
      j["base_perplexity"] = std::exp(nll_base / scored);
      j["kl_mean"] = kl / scored;
      j["top1_agreement"] = (double)agree / scored;
    }
    std::printf("%s\n", DumpJson(j).c_str());
  }
  return 0;
}

}  // namespace petrel::cli
