// `petrel compare BASE_DIR (--lora PATH | OTHER_MODEL_DIR) --prompt TEXT [--prompt TEXT]...
// [--max-tokens N] [--json]`: the two models' greedy answers for each prompt, one under the other,
// and where they first differ — the base vs fine-tuned check people do after training.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "core/json_util.h"
#include "model/lora/adapter.h"
#include "model/sequence_runner.h"
#include "tokenizer/tokenizer.h"

namespace petrel::cli {

namespace {

struct Side {
  std::string label;
  model::Model* model = nullptr;
  const model::lora::LoraAdapter* adapter = nullptr;
  tokenizer::Tokenizer* tok = nullptr;
  std::vector<int32_t> eos;
};

std::vector<int32_t> EosOf(const model::Model& m) {
  std::vector<int32_t> eos;
  const auto& g = m.generation_config();
  for (int64_t e : (g.eos_token_ids.empty() ? m.config().eos_token_ids : g.eos_token_ids)) eos.push_back((int32_t)e);
  return eos;
}

// Greedy continuation of `ids` (stops at EOS, which is kept, or after max_tokens).
std::vector<int32_t> Greedy(const Side& s, const std::vector<int32_t>& ids, int max_tokens) {
  model::SequenceRunner r(*s.model, (int64_t)ids.size() + max_tokens);
  r.set_adapter(s.adapter);
  std::vector<float> logits = r.Append(ids, false);
  std::vector<int32_t> out;
  while ((int)out.size() < max_tokens) {
    const int32_t t = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(t);
    if (std::find(s.eos.begin(), s.eos.end(), t) != s.eos.end() || (int)out.size() == max_tokens) break;
    logits = r.Append(std::vector<int32_t>{t}, false);
  }
  return out;
}

// Prints `text` after `label`, continuation lines indented under the first.
void PrintBlock(const std::string& label, const std::string& text) {
  std::printf("  %-14s| ", label.c_str());
  for (char c : text) {
    std::fputc(c, stdout);
    if (c == '\n') std::printf("  %-14s| ", "");
  }
  std::fputc('\n', stdout);
}

}  // namespace

int RunCompare(int argc, char** argv) {
  std::vector<std::string> prompts;
  std::string lora;
  int max_tokens = 64;
  bool json = false;
  ModelFlags mf;
  Flags f("petrel compare BASE_DIR (--lora PATH | OTHER_MODEL_DIR) --prompt TEXT [--prompt TEXT]... [--max-tokens N]");
  f.Add("prompt", &prompts, "prompt text (repeatable)")
      .Add("lora", &lora, "LoRA adapter (PEFT or MLX-LM) applied to BASE_DIR as the second model")
      .Add("max-tokens", &max_tokens, "tokens to generate per answer (default 64)")
      .AddSwitch("json", &json, "print one JSON object instead of the side-by-side text");
  mf.Register(f);
  if (auto st = f.Parse(argc, argv); !st.ok()) return ReportError(st.error());
  const size_t n_pos = f.positional().size();
  if (f.help() || prompts.empty() || n_pos < 1 || n_pos > 2 || (n_pos == 2) == !lora.empty() || max_tokens < 1) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  const std::string base_dir = f.positional()[0];
  auto base = model::LoadModel(base_dir, mf.ToLoadOptions());
  if (!base.ok()) return ReportError(base.error());
  auto base_tok = tokenizer::Tokenizer::FromDirectory(base_dir);
  if (!base_tok.ok()) return ReportError(base_tok.error());
  Side a{"base", base->get(), nullptr, base_tok->get(), EosOf(**base)};
  Side b = a;
  std::shared_ptr<const model::lora::LoraAdapter> adapter;
  std::unique_ptr<model::Model> other;
  std::unique_ptr<tokenizer::Tokenizer> other_tok;
  if (!lora.empty()) {
    auto ad = model::lora::LoadAdapter(lora, (*base)->config());
    if (!ad.ok()) return ReportError(ad.error());
    adapter = *ad;
    b.label = "+ lora";
    b.adapter = adapter.get();
  } else {
    const std::string other_dir = f.positional()[1];
    auto m = model::LoadModel(other_dir, mf.ToLoadOptions());
    if (!m.ok()) return ReportError(m.error());
    other = std::move(m).value();
    auto t = tokenizer::Tokenizer::FromDirectory(other_dir);  // its own tokenizer when it has one
    if (t.ok()) other_tok = std::move(t).value();
    b = Side{"other", other.get(), nullptr, other_tok ? other_tok.get() : base_tok->get(), EosOf(*other)};
  }

  Json out = Json::array();
  int differing = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    Json row;
    row["prompt"] = prompts[p];
    std::vector<std::vector<int32_t>> answers;
    for (const Side* s : {&a, &b}) {
      auto ids = s->tok->Encode(prompts[p]);
      if (!ids.ok()) return ReportError(ids.error());
      if (ids->empty()) return ReportError(InvalidArgument("prompt ", p + 1, " has no tokens"));
      for (int32_t id : *ids)
        if (id >= s->model->config().vocab_size)
          return ReportError(InvalidArgument("token id ", id, " is outside the ", s->label, " model's vocabulary"));
      auto gen = Greedy(*s, *ids, max_tokens);
      auto text = s->tok->Decode(gen, /*skip_special_tokens=*/true);
      if (!text.ok()) return ReportError(text.error());
      row[s == &a ? "a" : "b"] = Json{{"label", s->label}, {"ids", gen}, {"text", *text}};
      answers.push_back(std::move(gen));
    }
    size_t first_diff = 0;
    while (first_diff < answers[0].size() && first_diff < answers[1].size() &&
           answers[0][first_diff] == answers[1][first_diff])
      ++first_diff;
    const bool same = answers[0] == answers[1];
    differing += !same;
    row["identical"] = same;
    if (!same) row["first_difference"] = first_diff;
    if (!json) {
      std::printf("prompt %zu: %s\n", p + 1, prompts[p].c_str());
      PrintBlock(a.label, row["a"]["text"].get<std::string>());
      PrintBlock(b.label, row["b"]["text"].get<std::string>());
      if (same) std::printf("  (identical)\n\n");
      else std::printf("  (first difference at generated token %zu)\n\n", first_diff);
    }
    out.push_back(row);
  }
  if (json) {
    std::printf("%s\n", DumpJson(out).c_str());
  } else {
    std::printf("%d of %zu prompts answered differently (%s vs %s, greedy, up to %d tokens)\n", differing,
                prompts.size(), base_dir.c_str(), lora.empty() ? f.positional()[1].c_str() : lora.c_str(),
                max_tokens);
  }
  return 0;
}

}  // namespace petrel::cli
