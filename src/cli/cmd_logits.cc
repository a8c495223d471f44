// `petrel logits`: raw per-position logits as JSON, for comparing petrel with another engine.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "cli/model_text.h"
#include "core/json_util.h"
#include "model/lora/adapter.h"
#include "model/sequence_runner.h"
#include "tokenizer/tokenizer.h"

namespace petrel::cli {

int RunLogits(int argc, char** argv) {
  std::string prompt, ids_arg, probe_arg;
  std::vector<std::string> loras;
  int top_k = 5;
  ModelFlags mf;
  Flags f("petrel logits MODEL_DIR (--prompt TEXT | --ids 1,2,3) [--top-k K] [--probe-ids 7,8,9] [--lora PATH]...");
  f.Add("prompt", &prompt, "prompt text (tokenized as HF tokenizer(text) does)")
      .Add("ids", &ids_arg, "prompt token ids, comma-separated")
      .Add("top-k", &top_k, "top logits per position (default 5)")
      .Add("probe-ids", &probe_arg, "token ids whose logits are printed at every position")
      .Add("lora", &loras, "LoRA adapter directory (PEFT or MLX-LM); repeat to apply several at once");
  mf.Register(f);
  if (auto st = f.Parse(argc, argv); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1 || (prompt.empty() == ids_arg.empty())) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  const std::string dir = f.positional()[0];
  std::vector<int32_t> ids, probe;
  if (!ids_arg.empty()) {
    auto r = ParseIdList(ids_arg);
    if (!r.ok()) return ReportError(r.error());
    ids = *r;
  } else {
    auto tok = LoadTokenizer(dir);
    if (!tok.ok()) return ReportError(tok.error());
    auto r = (*tok)->Encode(prompt);
    if (!r.ok()) return ReportError(r.error());
    ids = *r;
  }
  if (!probe_arg.empty()) {
    auto r = ParseIdList(probe_arg);
    if (!r.ok()) return ReportError(r.error());
    probe = *r;
  }
  if (ids.empty()) return ReportError(InvalidArgument("the prompt has no tokens"));
  auto model = model::LoadModel(dir, mf.ToLoadOptions());
  if (!model.ok()) return ReportError(model.error());
  const int64_t vocab = (*model)->config().vocab_size;
  for (int32_t id : ids)
    if (id >= vocab) return ReportError(InvalidArgument("token id ", id, " >= vocab size ", vocab));
  for (int32_t id : probe)
    if (id >= vocab) return ReportError(InvalidArgument("probe id ", id, " >= vocab size ", vocab));
  if ((int64_t)ids.size() > (*model)->config().max_position_embeddings)
    return ReportError(OutOfRange("prompt of ", ids.size(), " tokens exceeds max_position_embeddings"));
  std::vector<std::shared_ptr<const model::lora::LoraAdapter>> adapters;
  for (const auto& path : loras) {
    auto a = model::lora::LoadAdapter(path, (*model)->config());
    if (!a.ok()) return ReportError(a.error());
    adapters.push_back(*a);
  }
  std::shared_ptr<const model::lora::LoraAdapter> adapter;
  if (!adapters.empty()) {
    auto c = model::lora::CombineAdapters(adapters);
    if (!c.ok()) return ReportError(c.error());
    adapter = *c;
  }
  model::SequenceRunner runner(**model, (int64_t)ids.size());
  runner.set_adapter(adapter.get());
  std::vector<float> logits = runner.Append(ids, /*all_logits=*/true);

  Json out;
  out["ids"] = ids;
  out["positions"] = Json::array();
  const int k = std::clamp<int>(top_k, 0, (int)vocab);
  std::vector<int32_t> idx(vocab);
  for (size_t p = 0; p < ids.size(); ++p) {
    const float* row = logits.data() + p * vocab;
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    const float mx = row[idx[0]];
    double s = 0;
    for (int64_t i = 0; i < vocab; ++i) s += std::exp((double)row[i] - mx);
    Json pos;
    std::vector<int32_t> top_ids(idx.begin(), idx.begin() + k);
    std::vector<float> top_logits;
    for (int i = 0; i < k; ++i) top_logits.push_back(row[idx[i]]);
    std::vector<float> probe_logits;
    for (int32_t id : probe) probe_logits.push_back(row[id]);
    pos["top_ids"] = top_ids;
    pos["top_logits"] = top_logits;
    pos["logsumexp"] = mx + std::log(s);
    pos["probe_logits"] = probe_logits;
    out["positions"].push_back(pos);
  }
  std::printf("%s\n", DumpJson(out).c_str());
  return 0;
}

}  // namespace petrel::cli
